"""The classic model factories, one module per family; `import tfzoo` imports them (and the text generator in
tfzoo.text.model) through tfzoo.registry.load_builtin_models, which registers them. The helpers below turn a
hyperparameter that names a Keras object into that object, refusing an unknown name in one line that says which
hyperparameter and what fits."""
from __future__ import annotations

from collections.abc import Callable

import keras


def keras_activation(hparam: str, name: str) -> Callable:
    """The Keras activation called `name`; ValueError naming the hyperparameter otherwise."""
    try:
        return keras.activations.get(name)
    except ValueError:
        raise ValueError(f"hyperparameter {hparam}={name!r} is not a Keras activation name; "
                         f"use one such as -p {hparam}=relu or -p {hparam}=tanh") from None


def keras_initializer(hparam: str, name: str) -> keras.initializers.Initializer:
    """The Keras initializer called `name`; ValueError naming the hyperparameter otherwise."""
    try:
        return keras.initializers.get(name)
    except ValueError:
        raise ValueError(f"hyperparameter {hparam}={name!r} is not a Keras initializer name; "
                         f"use one such as -p {hparam}=random_normal, glorot_uniform or zeros") from None
