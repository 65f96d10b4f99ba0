"""A data scientist's own model, outside the tfzoo package: what a plug-in module holds.

`user_models-0.1.dist-info/` beside it declares it as a `tfzoo.models` entry point, as `pip install` of a package
with `[project.entry-points."tfzoo.models"] user_models = "user_models"` would; with this folder on PYTHONPATH,
`tfzoo list`, `tfzoo train` and `tfzoo export` see `user_mlp`. tests/test_user_models.py uses it.
"""
from __future__ import annotations

from collections.abc import Sequence

import keras

import tfzoo
from tfzoo.optimizers import make_optimizer
from tfzoo.tasks import get_task


@keras.saving.register_keras_serializable(package="user_models")
class FeatureGain(keras.layers.Layer):
    """A learned gain per input feature: a custom layer, so the run's model.keras loads only with this module
    imported, while the exported SavedModel serves without it."""

    def build(self, input_shape: tuple[int | None, ...]) -> None:
        self.gain = self.add_weight(shape=(input_shape[-1],), initializer="ones", name="gain")

    def call(self, inputs):
        return inputs * self.gain


@tfzoo.register("user_mlp", task="binary", default_dataset="synthetic_binary", epochs=2, batch_size=16)
def user_mlp(
    *, input_shape: Sequence[int] = (8,), units: int = 8, optimizer: str = "adam", learning_rate: float = 0.01,
) -> keras.Model:
    """A user's binary classifier: per-feature gain -> Dense(units, ReLU) -> sigmoid."""
    task = get_task("binary")
    inputs = keras.Input(shape=tuple(input_shape), name="features")
    hidden = keras.layers.Dense(units, activation="relu")(FeatureGain()(inputs))
    model = keras.Model(inputs, task.head()(hidden), name="user_mlp")
    return task.compile(model, make_optimizer(optimizer, learning_rate))
