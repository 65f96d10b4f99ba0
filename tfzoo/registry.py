"""The model registry: plain factory functions registered by name, built with `create_model`."""
from __future__ import annotations

import inspect
from dataclasses import dataclass, field
from typing import Any, Callable

import keras
import numpy as np

# What a model predicts decides its loss, metrics and serving outputs; see tfzoo.models.common.
TASKS = ("regression", "binary", "multiclass", "language_model")


@dataclass(frozen=True)
class ModelSpec:
    """Everything tfzoo knows about a registered model besides its layers."""

    name: str
    factory: Callable[..., keras.Model]
    task: str
    default_dataset: str
    serving_input: str  # name of the input tensor in the exported signature, e.g. "image"
    epochs: int  # training defaults, taken from the source example
    batch_size: int
    description: str
    hparams: dict[str, Any] = field(default_factory=dict)  # defaults of every keyword hyperparameter


_REGISTRY: dict[str, ModelSpec] = {}


def register(
    name: str,
    *,
    task: str,
    default_dataset: str,
    serving_input: str,
    epochs: int,
    batch_size: int,
) -> Callable[[Callable[..., keras.Model]], Callable[..., keras.Model]]:
    """Register a factory. Every factory parameter must be keyword-only with a default."""
    if task not in TASKS:
        raise ValueError(f"task must be one of {TASKS}, got {task!r}")

    def decorator(factory: Callable[..., keras.Model]) -> Callable[..., keras.Model]:
        if name in _REGISTRY:
            raise ValueError(f"a model named {name!r} is already registered ({_REGISTRY[name].factory.__module__})")
        hparams = {}
        for param in inspect.signature(factory).parameters.values():
            if param.kind is not inspect.Parameter.KEYWORD_ONLY or param.default is inspect.Parameter.empty:
                raise TypeError(f"{factory.__name__}: hyperparameter {param.name!r} must be keyword-only "
                                "with a default")
            hparams[param.name] = param.default
        description = (inspect.getdoc(factory) or "").split("\n")[0]
        _REGISTRY[name] = ModelSpec(
            name=name,
            factory=factory,
            task=task,
            default_dataset=default_dataset,
            serving_input=serving_input,
            epochs=epochs,
            batch_size=batch_size,
            description=description,
            hparams=hparams,
        )
        return factory

    return decorator


def list_models() -> list[str]:
    """Names of every registered model, sorted."""
    return sorted(_REGISTRY)


def get_spec(name: str) -> ModelSpec:
    """The spec of a registered model; ValueError listing the known names otherwise."""
    try:
        return _REGISTRY[name]
    except KeyError:
        raise ValueError(f"unknown model {name!r}; known models: {', '.join(list_models())}") from None


def check_hparams(name: str, hparams: dict[str, Any]) -> None:
    """Raise ValueError naming the valid hyperparameters when `hparams` holds an unknown one."""
    unknown = sorted(set(hparams) - set(get_spec(name).hparams))
    if unknown:
        valid = ", ".join(sorted(get_spec(name).hparams))
        raise ValueError(f"{name} has no hyperparameter {', '.join(map(repr, unknown))}; "
                         f"valid hyperparameters: {valid}")
    defaults = get_spec(name).hparams
    for key, value in hparams.items():
        expected = value_kind(defaults[key])
        if expected and value_kind(value) not in (expected, "int" if expected == "float" else expected):
            raise ValueError(f"{name}: hyperparameter {key}={value!r} must be {KIND_NAMES[expected]} like its default "
                             f"{defaults[key]!r}, e.g. -p '{key}={defaults[key]!r}'")


KIND_NAMES = {"bool": "true or false", "int": "a whole number", "float": "a number", "str": "a string",
              "sequence": "a tuple or list"}


def value_kind(value: Any) -> str | None:
    """The kind of a hyperparameter value that a factory relies on; None when the default says nothing (None)."""
    if isinstance(value, bool):  # before int: bool is a subclass of int
        return "bool"
    if isinstance(value, (int, np.integer)):
        return "int"
    if isinstance(value, (float, np.floating)):
        return "float"
    if isinstance(value, str):
        return "str"
    if isinstance(value, (tuple, list)):
        return "sequence"
    return None


def create_model(name: str, **hparams: Any) -> keras.Model:
    """Build and compile a registered model; hyperparameters not given keep the source example's defaults."""
    spec = get_spec(name)
    check_hparams(name, hparams)
    return spec.factory(**hparams)
