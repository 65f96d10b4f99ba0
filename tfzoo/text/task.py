"""Language modelling over byte tokens: next-token logits, and prompts in / text out when served."""
from __future__ import annotations

import math
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import keras
import numpy as np
import tensorflow as tf
from keras import ops

from tfzoo.tasks import register_task
from tfzoo.tasks.base import Request, Task, check_data_task
from tfzoo.text.generation import (
    DEFAULT_MAX_TOKENS_PER_REQUEST,
    GENERATE_SIGNATURE,
    PROMPT,
    TEXT,
    generate,
    generation_functions,
)
from tfzoo.text.scores import headline_scores, lead, words
from tfzoo.text.tokenizer import PAD, example_headlines, example_prompts, holds_headlines, is_byte

if TYPE_CHECKING:
    from tfzoo.registry import ModelSpec


class LanguageModel(Task):
    """Token ids [N, T] -> next-token logits [N, T, vocabulary]; targets equal to the padding token are left out of
    the loss and the metrics. Served as strings: `serving_default` (prompt -> text, greedy) and `generate` (with
    per-prompt controls), the whole decoding loop in the graph (see tfzoo.text.generation)."""

    name = "language_model"
    reads_text = True
    # xla: the generation signatures' token loop compiled with XLA, for a server with --xla_cpu_compilation_enabled.
    serving_options = {"max_tokens_per_request": DEFAULT_MAX_TOKENS_PER_REQUEST, "xla": False}

    def loss(self) -> keras.losses.Loss:
        return keras.losses.SparseCategoricalCrossentropy(from_logits=True, ignore_class=PAD)

    def metrics(self) -> list[keras.metrics.Metric]:
        return [TokenAccuracy(), BitsPerByte()]

    def fit_hparams(self, spec: ModelSpec, data: Any, hparams: dict[str, Any]) -> dict[str, Any]:
        """max_length follows the data's sequence length, headline whether the data holds article/headline pairs
        (each when the factory has that hyperparameter)."""
        check_data_task(self, spec, data)
        fitted = dict(hparams)
        (length,) = data.input_shape
        if "max_length" in spec.hparams and fitted.setdefault("max_length", length) < length:
            raise ValueError(f"max_length={fitted['max_length']} is shorter than the data's {length}-token sequences; "
                             "leave max_length out and tfzoo takes it from the data")
        headline = holds_headlines(data.x_train)
        if "headline" in spec.hparams and fitted.setdefault("headline", headline) != headline:
            raise ValueError(f"headline={fitted['headline']} does not match the data ({data.name} "
                             f"{'holds' if headline else 'has no'} article/headline pairs); leave headline out")
        return fitted

    def serving_functions(
        self, model: keras.Model, *, max_tokens_per_request: int = DEFAULT_MAX_TOKENS_PER_REQUEST, xla: bool = False
    ) -> dict[str, Callable[..., dict[str, tf.Tensor]]]:
        """The generation signatures, with `max_tokens_per_request` (prompts x new tokens) as their token budget;
        with `xla`, their token loop compiled by XLA (the default graph needs none)."""
        return generation_functions(model, max_tokens_per_request=max_tokens_per_request, jit_compile=xla)

    def warmup_requests(self, model: keras.Model, held_out: np.ndarray) -> list[Request]:
        """Prompts from held-out examples through serving_default (greedy), and through the controls signature
        greedy and sampled with seeds. Few and short (a step per token), yet every path of the graph runs."""
        prompts = np.array([text.encode("utf-8") for text in example_prompts(held_out[:8])], dtype=object)
        settings = [(0.0, 0, 1.0, 1.0, 0), (0.8, 20, 1.0, 1.2, 0), (0.8, 0, 0.9, 1.0, 4), (1.0, 1, 1.0, 1.3, 3)]
        temperature, top_k, top_p, penalty, ngram = np.array(settings[: len(prompts)]).T
        controls = {PROMPT: prompts[: len(temperature)], "max_new_tokens": np.full(len(temperature), 16, np.int32),
                    "temperature": temperature.astype(np.float32), "top_k": top_k.astype(np.int32),
                    "top_p": top_p.astype(np.float32), "seed": np.arange(len(temperature), dtype=np.int64),
                    "repetition_penalty": penalty.astype(np.float32), "no_repeat_ngram_size": ngram.astype(np.int32)}
        return [("serving_default", {PROMPT: prompts[:1]}), ("serving_default", {PROMPT: prompts}),
                (GENERATE_SIGNATURE, controls)]

    def reference_outputs(self, model: keras.Model, request: Request) -> dict[str, np.ndarray]:
        """The text the trained model generates in this process for the request (greedy and seeded sampling alike:
        the same prompts, controls and seeds give the same text)."""
        signature, inputs = request
        return {TEXT: generation_functions(model)[signature](**inputs)[TEXT].numpy()}

    def held_out_scores(self, model: keras.Model, data: Any) -> dict[str, float]:
        """A headline model's ROUGE-1/2/L F1 and BLEU (tfzoo.text.scores) on the test pairs: of the headlines it
        writes for the articles with `generate`'s default controls, greedy (headline_*), and of the lead baseline,
        each article's first N words with N the mean headline length in words of the training split, rounded
        (lead_*). Nothing for a plain language model."""
        if not getattr(model, "headline", False):
            return {}
        articles, references = example_prompts(data.x_test), example_headlines(data.x_test)
        training_headlines = example_headlines(data.x_train)
        longest = max(len(headline.encode("utf-8")) for headline in training_headlines)
        generated = generate(model, articles, max_new_tokens=longest + 1)  # room for the ⟨end⟩ too
        lead_words = max(1, round(np.mean([len(words(headline)) for headline in training_headlines])))
        leads = [lead(article, lead_words) for article in articles]
        return {f"{system}_{name}": score for system, texts in (("headline", generated), ("lead", leads))
                for name, score in headline_scores(texts, references).items()}


class _TargetSum(keras.metrics.Metric):
    """Sum of a per-target value over the targets that are not padding, divided by a count of targets."""

    def __init__(self, name: str, **kwargs):
        super().__init__(name=name, **kwargs)
        self.total = self.add_variable(shape=(), initializer="zeros", name="total")
        self.count = self.add_variable(shape=(), initializer="zeros", name="count")

    def measure(self, y_true, y_pred):
        """(value per target, which targets to count) for int targets [B, T] and logits [B, T, V]."""
        raise NotImplementedError

    def update_state(self, y_true, y_pred, sample_weight=None) -> None:
        y_true = ops.cast(y_true, "int32")
        values, counted = self.measure(y_true, y_pred)
        self.total.assign_add(ops.sum(ops.where(y_true != PAD, ops.cast(values, "float32"), 0.0)))
        self.count.assign_add(ops.sum(ops.cast(counted, "float32")))

    def result(self):
        return self.total / ops.maximum(self.count, 1.0)


@keras.saving.register_keras_serializable(package="tfzoo")
class TokenAccuracy(_TargetSum):
    """Share of next-token targets whose most likely token is right (padding targets left out)."""

    def __init__(self, name: str = "accuracy", **kwargs):
        super().__init__(name=name, **kwargs)

    def measure(self, y_true, y_pred):
        return ops.argmax(y_pred, axis=-1) == y_true, y_true != PAD


@keras.saving.register_keras_serializable(package="tfzoo")
class BitsPerByte(_TargetSum):
    """Cross-entropy in bits summed over every target (bytes and ⟨end⟩), divided by the number of byte targets.

    The usual measure of a byte-level language model: the bits needed to code the text, per byte of text.
    """

    def __init__(self, name: str = "bits_per_byte", **kwargs):
        super().__init__(name=name, **kwargs)

    def measure(self, y_true, y_pred):
        nats = ops.sparse_categorical_crossentropy(y_true, y_pred, from_logits=True)
        return nats / math.log(2.0), is_byte(y_true)


register_task(LanguageModel())  # here, not in tfzoo.tasks: the task belongs to the text bundle (one-way imports)
