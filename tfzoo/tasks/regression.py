"""Regression: one real number per example, mean squared error."""
from __future__ import annotations

import keras
import numpy as np

from tfzoo.tasks.base import PredictionTask


class Regression(PredictionTask):
    """A real-valued prediction [N, 1] under `prediction`; loss MSE, metric MAE."""

    name = "regression"
    primary_output = "prediction"
    activation = None

    def loss(self) -> keras.losses.Loss:
        return keras.losses.MeanSquaredError()

    def metrics(self) -> list[keras.metrics.Metric]:
        return [keras.metrics.MeanAbsoluteError(name="mae")]

    def labels(self, values: np.ndarray, target: str) -> tuple[np.ndarray, int | None]:
        return values.astype(np.float32)[:, None], None
