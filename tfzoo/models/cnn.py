"""The MNIST convolutional network."""
from __future__ import annotations

from collections.abc import Sequence

import keras

from tfzoo.models.mlp import dense_stack
from tfzoo.optimizers import make_optimizer
from tfzoo.registry import register
from tfzoo.tasks import get_task


@register("mnist_cnn", task="multiclass", default_dataset="mnist", epochs=10, batch_size=32)
def mnist_cnn(
    *, input_shape: Sequence[int] = (28, 28), num_classes: int = 10, filters: Sequence[int] = (32, 64),
    kernel_size: int = 3, dense_units: int = 64, optimizer: str = "adam", learning_rate: float = 1e-3,
) -> keras.Model:
    """CNN Conv32-MaxPool-Conv64-MaxPool-Dense64-10 softmax on raw 0-255 pixels, Adam.

    The source paired integer labels with categorical cross-entropy; tfzoo uses the sparse loss.
    """
    inputs = keras.Input(shape=tuple(input_shape), name="image")
    x = keras.layers.Rescaling(1.0 / 255)(inputs)
    x = keras.layers.Reshape((*tuple(input_shape), 1))(x)  # grayscale channel for Conv2D
    for count in filters:
        x = keras.layers.Conv2D(count, kernel_size, activation="relu")(x)
        x = keras.layers.MaxPooling2D()(x)
    x = keras.layers.Flatten()(x)
    x = dense_stack(x, (dense_units,), dropout=0.0)
    outputs = get_task("multiclass").head(num_classes)(x)
    model = keras.Model(inputs, outputs, name="mnist_cnn")
    return get_task("multiclass").compile(model, make_optimizer(optimizer, learning_rate))
