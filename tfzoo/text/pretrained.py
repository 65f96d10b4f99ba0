"""The pre-trained headline model tfzoo ships, where a headline fine-tune starts, and the command that makes it.

`tfzoo train text_generator --csv pairs.csv --text-column ARTICLE --target HEADLINE` (and `tfzoo.train` on any
article/headline pairs) starts from HEADLINE_RUN unless `init_from` says otherwise: a text_generator of the
default architecture pre-trained in two stages, each a plain `tfzoo.train` run:
1. a language model of `library_docs` (the docstrings of the standard library and of tfzoo's installed
   distributions, 25 MB): English technical prose;
2. a fine-tune of it on `library_docs_headlines` (docstring summaries over their descriptions): writing a short
   summary line after an article.
Both read only what is installed, so the command is reproducible offline on any machine with tfzoo installed (the
same Python and distribution versions give the same data):

    python -m tfzoo.text.pretrained --work-dir runs/pretrained     # 41 minutes on 2 CPU cores (36 + 5)

It writes HEADLINE_RUN: the last stage's config.json, with the hyperparameters a fine-tune from it takes unless
given (`fine_tune_hparams`: learning rate 1e-4, the best of 1e-3 to 3e-5 on held-out pairs in BENCHMARKS.md), and
its model.keras without optimizer state (a fine-tune's optimizer starts afresh anyway), 1.9 MB.
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

import numpy as np

from tfzoo.files import atomic_path, write_text_atomic
from tfzoo.text.tokenizer import holds_headlines

HEADLINE_RUN = Path(__file__).parent / "pretrained_runs" / "headlines"
# The recipe, chosen by the runs in BENCHMARKS.md ("Headlines on real pairs").
LANGUAGE_MODEL = {"dataset": "library_docs", "epochs": 3, "batch_size": 32}
HEADLINES = {"dataset": "library_docs_headlines", "epochs": 4, "batch_size": 32, "learning_rate": 1e-3}
# What a fine-tune from it takes unless given (config.json's fine_tune_hparams): a tenth of stage 2's rate.
FINE_TUNE_HPARAMS = {"learning_rate": 1e-4}


def headline_starting_point(data: Any) -> Path | None:
    """HEADLINE_RUN for article/headline pairs (examples holding ⟨sep⟩) when the package has it, else None."""
    from tfzoo.run_dir import MODEL_FILE  # here, not at import: the model registry imports this module

    x_train = getattr(data, "x_train", None)
    if x_train is None or not holds_headlines(x_train) or not (HEADLINE_RUN / MODEL_FILE).is_file():
        return None
    return HEADLINE_RUN


def build(work_dir: Path, out: Path = HEADLINE_RUN) -> Path:
    """Run both stages in `work_dir` (a stage already finished there is kept), then write `out`."""
    import keras

    import tfzoo
    from tfzoo.run_dir import CONFIG_FILE, MODEL_FILE, load_run
    from tfzoo.training.fine_tune import FRESH

    language_model = work_dir / "library_docs"
    tfzoo.train("text_generator", **LANGUAGE_MODEL, run_dir=language_model, resume=True, init_from=FRESH)
    headlines = work_dir / "library_docs_headlines"
    tfzoo.train("text_generator", **HEADLINES, run_dir=headlines, resume=True, init_from=language_model)
    config, trained = load_run(headlines)
    weights_only = trained.__class__.from_config(trained.get_config())  # never compiled: no optimizer state
    weights_only(np.zeros((1, 2), np.int32))  # builds its weights
    weights_only.set_weights(trained.get_weights())
    with atomic_path(out / MODEL_FILE) as temporary:
        keras.saving.save_model(weights_only, temporary)
    config["fine_tune_hparams"] = FINE_TUNE_HPARAMS
    write_text_atomic(out / CONFIG_FILE, json.dumps(config, indent=2, sort_keys=True) + "\n")
    return out


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m tfzoo.text.pretrained",
                                     description="Pre-train tfzoo's headline model (both stages) and write it into "
                                                 "the package, where headline fine-tunes start.")
    parser.add_argument("--work-dir", type=Path, required=True, help="where the two stages' run dirs go")
    parser.add_argument("--out", type=Path, default=HEADLINE_RUN, help="where to write it (default: the package's)")
    args = parser.parse_args()
    print(f"wrote {build(args.work_dir, args.out)}")


if __name__ == "__main__":
    main()
