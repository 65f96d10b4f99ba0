"""Text generator quality: tfzoo's default recipe against a plain Keras Transformer, then what greedy output looks like.

1. `tfzoo.train("text_generator")` with every default (data, epochs, batch size, recipe): held-out bits per byte
   on python_docs' test documents and the wall time of the whole call (data, training, evaluation, saving).
2. The plain baseline, in the same run: the same dimensions (2 blocks, d_model 128, 4 heads, feed-forward 512,
   256-token windows of the same splits) written with stock Keras layers (an Embedding, learned positions,
   MultiHeadAttention with its causal mask, pre-layer-norm blocks) and trained with Keras' defaults (Adam 1e-3,
   batch 32, no schedule, no dropout) for --baseline-epochs, through the same training pipeline (windows re-cut
   each epoch); the same loss and bits-per-byte metric.
3. Generation from the trained default model on held-out prompts (the first 48 bytes of the first 48 test
   windows), 128 new bytes each: greedy with the repetition controls off, and serving_default's choice
   (greedy with the default controls). Reported: word distinct-2 and distinct-3 over all outputs (higher is more
   varied) and how many outputs repeat a word 3-gram (a loop does).

    python benchmarks/text_quality.py
"""
from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import keras
from keras import ops

import tfzoo
from tfzoo.datasets import bigram, load_dataset
from tfzoo.datasets.base import steps_per_epoch
from tfzoo.tasks import get_task
from tfzoo.text.generation import DEFAULTS, OFF, generate
from tfzoo.text.scores import distinct_n, repeats_ngram
from tfzoo.text.tokenizer import VOCAB_SIZE, example_prompts

PROMPT_BYTES, NEW_TOKENS, PROMPTS = 48, 128, 48


class LearnedPositions(keras.layers.Layer):
    """Adds a trained vector per position."""

    def __init__(self, length: int, **kwargs):
        super().__init__(**kwargs)
        self.length = length

    def build(self, input_shape) -> None:
        self.table = self.add_weight(shape=(self.length, input_shape[-1]), initializer="random_normal")

    def call(self, x):
        return x + self.table[None, : ops.shape(x)[1]]


def plain_transformer(length: int, d_model: int = 128, heads: int = 4, ff_dim: int = 512, blocks: int = 2):
    """The baseline: a byte Transformer as stock Keras layers, compiled with Keras' default Adam."""
    tokens = keras.Input((None,), dtype="int32")
    x = LearnedPositions(length)(keras.layers.Embedding(VOCAB_SIZE, d_model)(tokens))
    for _ in range(blocks):
        h = keras.layers.LayerNormalization()(x)
        x = x + keras.layers.MultiHeadAttention(heads, d_model // heads)(h, h, use_causal_mask=True)
        h = keras.layers.LayerNormalization()(x)
        x = x + keras.layers.Dense(d_model)(keras.layers.Dense(ff_dim, activation="relu")(h))
    model = keras.Model(tokens, keras.layers.Dense(VOCAB_SIZE)(keras.layers.LayerNormalization()(x)))
    return get_task("language_model").compile(model, keras.optimizers.Adam())


def train_plain(data, epochs: int, batch_size: int = 32) -> tuple[float, float]:
    """(held-out bits per byte, seconds) of the plain baseline trained `epochs` on `data`."""
    keras.utils.set_random_seed(0)
    started = time.perf_counter()
    model = plain_transformer(data.input_shape[0])
    model.fit(data.training_pipeline(batch_size, seed=0, epochs=range(epochs)), epochs=epochs, verbose=0,
              steps_per_epoch=steps_per_epoch(data.num_examples("train"), batch_size))
    scores = model.evaluate(data.pipeline("test", batch_size), return_dict=True, verbose=0)
    return scores["bits_per_byte"], time.perf_counter() - started


def diversity(texts: list[str]) -> dict[str, float]:
    return {"distinct_2": distinct_n(texts, 2), "distinct_3": distinct_n(texts, 3),
            "repeating_outputs": sum(repeats_ngram(text, 3) for text in texts)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--baseline-epochs", type=int, default=10)
    args = parser.parse_args()
    data = load_dataset("python_docs")
    print(f"python_docs: {data.num_examples('train')} training windows of {data.input_shape[0]} tokens; "
          f"smoothed byte bigram: {bigram.bigram_bits_per_byte(data):.3f} held-out bits per byte", flush=True)

    started = time.perf_counter()
    result = tfzoo.train("text_generator", run_dir=Path(tempfile.mkdtemp()) / "run", verbose=0)
    default_seconds = time.perf_counter() - started
    config = json.loads((result.run_dir / "config.json").read_text())
    print(f"default recipe ({config['epochs']} epochs, batch {config['batch_size']}, {config['hparams']}): "
          f"{result.metrics['bits_per_byte']:.4f} held-out bits per byte, {default_seconds:.0f} s", flush=True)
    plain_bits, plain_seconds = train_plain(data, args.baseline_epochs)
    print(f"plain Keras baseline ({args.baseline_epochs} epochs, batch 32, Adam 1e-3): {plain_bits:.4f} held-out "
          f"bits per byte, {plain_seconds:.0f} s", flush=True)

    prompts = example_prompts(data.x_test[:PROMPTS], max_bytes=PROMPT_BYTES)
    outputs = {"greedy, controls off": generate(result.model, prompts, max_new_tokens=NEW_TOKENS, **OFF),
               f"serving_default's (repetition_penalty {DEFAULTS['repetition_penalty']}, no_repeat_ngram_size "
               f"{DEFAULTS['no_repeat_ngram_size']})": generate(result.model, prompts, max_new_tokens=NEW_TOKENS)}
    print(f"\n{len(prompts)} held-out prompts of {PROMPT_BYTES} bytes, {NEW_TOKENS} new bytes each")
    print("| decoding | word distinct-2 | word distinct-3 | outputs repeating a word 3-gram |")
    print("|---|---:|---:|---:|")
    for name, texts in outputs.items():
        scores = diversity(texts)
        print(f"| {name} | {scores['distinct_2']:.2f} | {scores['distinct_3']:.2f} | "
              f"{scores['repeating_outputs']}/{len(texts)} |")
    for name, texts in outputs.items():
        print(f"\n{name}, first output: {prompts[0]!r} -> {texts[0]!r}")


if __name__ == "__main__":
    main()
