"""Multiclass classification: a probability per class from integer labels, sparse categorical cross-entropy."""
from __future__ import annotations

from typing import TYPE_CHECKING, Any

import keras
import numpy as np
import tensorflow as tf

from tfzoo.tasks.base import PredictionTask, shown_values

if TYPE_CHECKING:
    from tfzoo.registry import ModelSpec


class MulticlassClassification(PredictionTask):
    """`probabilities` [N, classes] and `class_id` [N] (the most likely class); labels are class ids 0..K-1.

    The loss is the *sparse* categorical cross-entropy: the source CNN paired integer labels with
    `categorical_crossentropy`, which is wrong.
    """

    name = "multiclass"
    primary_output = "probabilities"
    activation = "softmax"

    def loss(self) -> keras.losses.Loss:
        return keras.losses.SparseCategoricalCrossentropy()

    def metrics(self) -> list[keras.metrics.Metric]:
        return [keras.metrics.SparseCategoricalAccuracy(name="accuracy")]

    def named_outputs(self, predictions: tf.Tensor) -> dict[str, tf.Tensor]:
        return {self.primary_output: predictions,
                "class_id": tf.argmax(predictions, axis=-1, output_type=tf.int64)}

    def fit_hparams(self, spec: ModelSpec, data: Any, hparams: dict[str, Any]) -> dict[str, Any]:
        fitted = super().fit_hparams(spec, data, hparams)
        if "num_classes" in spec.hparams and data.num_classes is not None:
            given_classes = fitted.setdefault("num_classes", data.num_classes)
            if given_classes < data.num_classes:
                raise ValueError(f"num_classes={given_classes} is smaller than the {data.num_classes} classes in "
                                 "the data")
        return fitted

    def labels(self, values: np.ndarray, target: str) -> tuple[np.ndarray, int | None]:
        found = np.unique(values)
        if not (np.all(found == np.round(found)) and found.min() >= 0):
            raise ValueError(f"a multiclass task needs target {target!r} to hold class ids 0, 1, 2, ..., found "
                             f"{shown_values(found)}; encode the classes as integers "
                             f"(e.g. df[{target!r}].astype('category').cat.codes)")
        return values.astype(np.int64), int(found.max()) + 1
