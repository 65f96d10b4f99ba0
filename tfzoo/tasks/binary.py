"""Binary classification: the probability of the positive class, binary cross-entropy."""
from __future__ import annotations

from typing import TYPE_CHECKING, Any

import keras
import numpy as np
import tensorflow as tf

from tfzoo.tasks.base import PredictionTask, Task, shown_values
from tfzoo.tasks.registry import get_task

if TYPE_CHECKING:
    from tfzoo.registry import ModelSpec


class BinaryClassification(PredictionTask):
    """`probability` [N, 1] of class 1 and `class_id` [N] (1 when the probability is above 0.5); labels 0 or 1."""

    name = "binary"
    primary_output = "probability"
    activation = "sigmoid"

    def loss(self) -> keras.losses.Loss:
        return keras.losses.BinaryCrossentropy()

    def metrics(self) -> list[keras.metrics.Metric]:
        return [keras.metrics.BinaryAccuracy(name="accuracy"), keras.metrics.AUC(name="auc")]

    def run_task(self, spec: ModelSpec, data: Any) -> Task:
        """Multiclass for data of several classes when the model can build that head (it has `num_classes`), as
        scikit-learn's classifiers take any number of classes."""
        if data.task == "multiclass" and "num_classes" in spec.hparams:
            return get_task("multiclass")
        return self

    def named_outputs(self, predictions: tf.Tensor) -> dict[str, tf.Tensor]:
        return {self.primary_output: predictions, "class_id": tf.cast(predictions[:, 0] > 0.5, tf.int64)}

    def labels(self, values: np.ndarray, target: str) -> tuple[np.ndarray, int | None]:
        found = np.unique(values)
        if not np.isin(found, (0, 1)).all():
            raise ValueError(f"a binary task needs target {target!r} to hold only 0 and 1, found "
                             f"{shown_values(found)}; map the two classes to 0 and 1 "
                             f"(e.g. df[{target!r}] = (df[{target!r}] == POSITIVE).astype(int))")
        return values.astype(np.float32)[:, None], None
