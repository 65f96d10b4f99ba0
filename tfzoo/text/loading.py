"""A text generator from a folder: the 'generate' signature of an export, or of the model of a trained run."""
from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import tensorflow as tf

from tfzoo.run_dir import load_run
from tfzoo.text.generation import GENERATE_SIGNATURE, generation_functions

NEEDS = "tfzoo generate needs a text_generator export or run dir"


def load_generate_function(folder: str | Path, *, jit_compile: bool = True) -> Callable[..., dict[str, tf.Tensor]]:
    """The 'generate' signature (see tfzoo.text.generation) of the text generator in `folder`, to run with
    `call_generate_signature`: an export's own (the graph TF Serving serves), or compiled from a run dir's model,
    its token loop with XLA unless `jit_compile` is False (an export's graph runs as it was exported).

    ValueError, one line, for a folder that holds something else; FileNotFoundError for one that holds neither.
    """
    folder = Path(folder)
    if (folder / "saved_model.pb").is_file():
        try:
            signatures = tf.saved_model.load(str(folder), tags=["serve"]).signatures
        except Exception as error:  # a damaged export fails in many ways (DecodeError, OpError, ...)
            raise ValueError(f"{folder} cannot be loaded as a SavedModel ({type(error).__name__}); "
                             f"`tfzoo validate {folder}` says what is wrong") from None
        if GENERATE_SIGNATURE not in signatures:
            raise ValueError(f"{folder} has no '{GENERATE_SIGNATURE}' signature (it has "
                             f"{', '.join(sorted(signatures.keys()))}); {NEEDS}")
        return signatures[GENERATE_SIGNATURE]
    config, model = load_run(folder)
    # A text generator is a model with the cached decoding step that generation runs on.
    if not hasattr(model, "call_with_cache"):
        raise ValueError(f"{folder} is a run of {config['model']}, not a text generator; {NEEDS}")

    def generate_signature(**inputs: tf.Tensor) -> dict[str, tf.Tensor]:
        # The compiled functions hold their model weakly (a model used nowhere else is freed with them), and
        # nothing else holds this one: the closure keeps it alive for as long as the function is used.
        return generation_functions(model, jit_compile=jit_compile)[GENERATE_SIGNATURE](**inputs)

    return generate_signature
