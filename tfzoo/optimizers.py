"""The optimizer as a hyperparameter: every model factory builds its optimizer by name through `make_optimizer`.

The source examples the zoo reproduces train with plain SGD, momentum, AdaGrad, RMSprop, Adam and AdamW; one
name-to-builder table lets any model be trained with any of them (`-p optimizer=sgd -p learning_rate=0.01`)
while each factory keeps its example's default.
"""
from __future__ import annotations

import math
from collections.abc import Callable
from functools import partial
from numbers import Real

import keras

# Name -> builder taking the learning rate as a keyword; a fresh optimizer per call, since a Keras optimizer binds
# to the variables of the one model it first trains.
OPTIMIZERS: dict[str, Callable[..., keras.optimizers.Optimizer]] = {
    "adam": keras.optimizers.Adam,
    "sgd": keras.optimizers.SGD,
    # 0.9: the momentum of the classic TF1 tf.train.MomentumOptimizer examples.
    "momentum": partial(keras.optimizers.SGD, momentum=0.9),
    "rmsprop": keras.optimizers.RMSprop,
    "adagrad": keras.optimizers.Adagrad,
    "adamw": keras.optimizers.AdamW,  # Keras' own default weight decay
}


def make_optimizer(name: str, learning_rate: float) -> keras.optimizers.Optimizer:
    """A new optimizer `name` (one of OPTIMIZERS) with the given learning rate; ValueError on a bad name or rate."""
    if not isinstance(name, str) or name not in OPTIMIZERS:
        raise ValueError(f"optimizer {name!r} is not one of {', '.join(OPTIMIZERS)}; pass -p optimizer=adam "
                         f"(or another of those names)")
    # bool is an int subclass, but learning_rate=True is a mistake, not a learning rate of 1.
    if isinstance(learning_rate, bool) or not isinstance(learning_rate, Real) or not math.isfinite(learning_rate) \
            or learning_rate < 0:  # 0 is allowed: it freezes the weights
        raise ValueError(f"learning_rate={learning_rate!r} is not a finite number >= 0; pass e.g. "
                         f"-p learning_rate=0.001")
    return OPTIMIZERS[name](learning_rate=float(learning_rate))
