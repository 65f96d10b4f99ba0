"""Linear and logistic regression: one Dense layer, trained with plain SGD as in the source examples."""
from __future__ import annotations

from collections.abc import Sequence

import keras

from tfzoo.models import keras_initializer
from tfzoo.optimizers import make_optimizer
from tfzoo.registry import register
from tfzoo.tasks import classification_task, get_task


def initializers(kernel_initializer: str, bias_initializer: str) -> dict[str, keras.initializers.Initializer]:
    """The Dense options of the two initializer hyperparameters."""
    return {"kernel_initializer": keras_initializer("kernel_initializer", kernel_initializer),
            "bias_initializer": keras_initializer("bias_initializer", bias_initializer)}


@register("linear_regression", task="regression", default_dataset="synthetic_regression", epochs=20, batch_size=32)
def linear_regression(*, input_shape: Sequence[int] = (10,), kernel_initializer: str = "random_normal",
                      bias_initializer: str = "random_normal", optimizer: str = "sgd",
                      learning_rate: float = 0.01) -> keras.Model:
    """y = xW + b with W [F, 1], mean squared error and SGD(0.01): the TF1 session/placeholder example in Keras 3.

    W and b start from a normal distribution as in the source; the initializers are Keras initializer names.
    The numpy original updated the weights without a learning rate; here SGD applies one.
    """
    inputs = keras.Input(shape=tuple(input_shape), name="features")
    outputs = get_task("regression").head(**initializers(kernel_initializer, bias_initializer))(inputs)
    model = keras.Model(inputs, outputs, name="linear_regression")
    return get_task("regression").compile(model, make_optimizer(optimizer, learning_rate))


@register("logistic_regression", task="binary", default_dataset="synthetic_logistic", epochs=20, batch_size=32)
def logistic_regression(*, input_shape: Sequence[int] = (2,), num_classes: int = 2,
                        kernel_initializer: str = "glorot_uniform", bias_initializer: str = "zeros",
                        optimizer: str = "sgd", learning_rate: float = 0.1) -> keras.Model:
    """p = sigmoid(xW + b) with binary cross-entropy and SGD: the numpy logistic regression example; with more than
    two classes, softmax (multinomial) regression with sparse categorical cross-entropy.

    The initializers are Keras initializer names (Keras' Dense defaults; e.g. "random_normal" for a normal start).
    """
    task = classification_task(num_classes)
    inputs = keras.Input(shape=tuple(input_shape), name="features")
    outputs = task.head(1 if num_classes == 2 else num_classes,
                        **initializers(kernel_initializer, bias_initializer))(inputs)
    model = keras.Model(inputs, outputs, name="logistic_regression")
    return task.compile(model, make_optimizer(optimizer, learning_rate))
