"""The LSTM sequence classifier."""
from __future__ import annotations

from collections.abc import Sequence

import keras

from tfzoo.models import keras_activation
from tfzoo.models.mlp import dense_stack
from tfzoo.optimizers import make_optimizer
from tfzoo.registry import register
from tfzoo.tasks import get_task


@register("lstm_classifier", task="binary", default_dataset="sequence_order", epochs=10, batch_size=32)
def lstm_classifier(
    *, input_shape: Sequence[int] = (10, 10), lstm_units: int = 100, activation: str = "relu", dense_units: int = 50,
    optimizer: str = "adam", learning_rate: float = 1e-3,
) -> keras.Model:
    """LSTM(100, ReLU) over (timesteps, features) sequences -> Dense 50 -> 1 sigmoid, Adam.

    `activation` is the LSTM's cell activation (the source's ReLU; Keras' own default is tanh). The source
    trained it on random noise; tfzoo's default data is a task whose label depends on order.
    """
    inputs = keras.Input(shape=tuple(input_shape), name="sequence")
    x = keras.layers.LSTM(lstm_units, activation=keras_activation("activation", activation))(inputs)
    x = dense_stack(x, (dense_units,), dropout=0.0)
    outputs = get_task("binary").head()(x)
    model = keras.Model(inputs, outputs, name="lstm_classifier")
    return get_task("binary").compile(model, make_optimizer(optimizer, learning_rate))
