"""The model registry: plain factory functions registered by name, built with `create_model`.

`import tfzoo` registers the built-in factories; those of installed plug-ins are registered on the registry's first
use (listing or looking up a model): a distribution that declares an entry point in the `tfzoo.models` group (in
pyproject.toml: `[project.entry-points."tfzoo.models"] my_models = "my_package.models"`) has that module imported,
and its `@tfzoo.register` factories are then seen by `tfzoo list`, `tfzoo train` and the rest like the built-in
ones. A factory registered in a user's own module is seen by the Python API once that module is imported.
"""
from __future__ import annotations

import importlib
import importlib.metadata
import inspect
import math
from dataclasses import dataclass, field
from numbers import Real
from pathlib import Path
from typing import Any, Callable

import keras
import numpy as np

from tfzoo.tasks import Task, get_task

ENTRY_POINT_GROUP = "tfzoo.models"
# The modules of the built-in factories, imported (and so registered) by load_builtin_models.
BUILTIN_MODULES = ("tfzoo.models.regression", "tfzoo.models.mlp", "tfzoo.models.cnn", "tfzoo.models.lstm",
                   "tfzoo.text.model")


@dataclass(frozen=True)
class Range:
    """The values a numeric hyperparameter may take: low..high, each end included unless open; for a sequence
    (`units=(64, 32)`), every element."""

    low: float
    high: float = math.inf
    low_open: bool = False
    high_open: bool = False

    def __contains__(self, value: float) -> bool:
        above = self.low < value if self.low_open else self.low <= value
        below = value < self.high if self.high_open else value <= self.high
        return above and below  # NaN fails both

    def describe(self) -> str:
        """Interval notation, e.g. [0, 1) or [1, inf)."""
        high = "inf)" if self.high == math.inf else f"{self.high:g}{')' if self.high_open else ']'}"
        return f"{'(' if self.low_open else '['}{self.low:g}, {high}"


POSITIVE = Range(1)  # widths, counts, sizes: at least one
NON_NEGATIVE = Range(0)  # rates and step counts: 0 turns the thing off
# Ranges of the hyperparameters the built-in factories share by name; a factory with a hyperparameter of one of
# these names gets its range unless `register(..., ranges=...)` says otherwise.
STANDARD_RANGES: dict[str, Range] = {
    "dropout": Range(0, 1, high_open=True),
    **dict.fromkeys(("input_shape", "num_classes", "units", "filters", "kernel_size", "dense_units", "lstm_units",
                     "num_layers", "d_model", "num_heads", "ff_dim", "max_length"), POSITIVE),
    **dict.fromkeys(("learning_rate", "clipnorm", "weight_decay", "warmup_steps", "decay_steps"), NON_NEGATIVE),
}


@dataclass(frozen=True)
class ModelSpec:
    """Everything tfzoo knows about a registered model besides its layers."""

    name: str
    factory: Callable[..., keras.Model]
    task: Task  # what the model predicts: its loss, metrics, serving signatures, ... (see tfzoo.tasks)
    default_dataset: str
    epochs: int  # training defaults: the source example's but where README's "Defaults and the sources" says why
    batch_size: int
    description: str
    hparams: dict[str, Any] = field(default_factory=dict)  # defaults of every keyword hyperparameter
    ranges: dict[str, Range] = field(default_factory=dict)  # the numeric hyperparameters' valid values
    # The finished run a training on some data starts from when no init_from is given (a pre-trained run the
    # package ships), or None: the data -> run dir, or None for data it has none for.
    starting_point: Callable[[Any], Path | None] | None = None


_REGISTRY: dict[str, ModelSpec] = {}


def register(
    name: str,
    *,
    task: str | Task,
    default_dataset: str,
    epochs: int,
    batch_size: int,
    ranges: dict[str, Range | None] | None = None,
    starting_point: Callable[[Any], Path | None] | None = None,
) -> Callable[[Callable[..., keras.Model]], Callable[..., keras.Model]]:
    """Register a factory under `name`. Every factory parameter must be keyword-only with a default; `task` is
    a task name (see `tfzoo.tasks.list_tasks()`) or a Task; `epochs` and `batch_size` are its training defaults.
    `ranges` declares the valid values of numeric hyperparameters beyond (or instead of, None: unchecked) those
    STANDARD_RANGES gives the factory's hyperparameters of those names. `starting_point(data)` names the finished
    run (a run dir) a training on `data` fine-tunes when it is given no `init_from`, or None to start from fresh
    weights."""
    task = get_task(task)

    def decorator(factory: Callable[..., keras.Model]) -> Callable[..., keras.Model]:
        if name in _REGISTRY:
            raise ValueError(f"a model named {name!r} is already registered ({_REGISTRY[name].factory.__module__})")
        hparams = {}
        for param in inspect.signature(factory).parameters.values():
            if param.kind is not inspect.Parameter.KEYWORD_ONLY or param.default is inspect.Parameter.empty:
                raise TypeError(f"{factory.__name__}: hyperparameter {param.name!r} must be keyword-only "
                                "with a default")
            hparams[param.name] = param.default
        declared = {key: STANDARD_RANGES[key] for key in hparams if key in STANDARD_RANGES} | (ranges or {})
        description = (inspect.getdoc(factory) or "").split("\n")[0]
        _REGISTRY[name] = ModelSpec(
            name=name,
            factory=factory,
            task=task,
            default_dataset=default_dataset,
            epochs=epochs,
            batch_size=batch_size,
            description=description,
            hparams=hparams,
            ranges={key: bounds for key, bounds in declared.items() if bounds is not None},
            starting_point=starting_point,
        )
        return factory

    return decorator


class PluginError(ValueError):
    """A `tfzoo.models` plug-in failed to import."""


def load_builtin_models() -> None:
    """Import the built-in factories (registering them and their layers' Keras classes); `import tfzoo` does."""
    for module in BUILTIN_MODULES:
        importlib.import_module(module)


_plugins_loaded = False


def load_models() -> None:
    """Import the built-in factories and, once, every `tfzoo.models` entry point; a plug-in that fails to import
    is an error naming it and its distribution."""
    global _plugins_loaded
    if _plugins_loaded:
        return
    load_builtin_models()
    _plugins_loaded = True
    for entry_point in importlib.metadata.entry_points(group=ENTRY_POINT_GROUP):
        try:
            entry_point.load()
        except Exception as error:  # whatever a plug-in raises, say which one it is
            distribution = entry_point.dist.name if entry_point.dist else "an unknown distribution"
            raise PluginError(f"the tfzoo.models entry point {entry_point.name} = {entry_point.value} (from "
                              f"{distribution}) failed to import: {type(error).__name__}: {error}; fix or uninstall "
                              "that plug-in") from error


def list_models() -> list[str]:
    """Names of every registered model, sorted."""
    load_models()
    return sorted(_REGISTRY)


def get_spec(name: str) -> ModelSpec:
    """The spec of a registered model; ValueError listing the known names otherwise."""
    load_models()
    try:
        return _REGISTRY[name]
    except KeyError:
        raise ValueError(f"unknown model {name!r}; known models: {', '.join(list_models())}") from None


def check_hparams(name: str, hparams: dict[str, Any]) -> None:
    """Raise ValueError naming the valid hyperparameters when `hparams` holds an unknown one, and one line naming
    the hyperparameter, its range and the value when a value is of the wrong kind or out of its range."""
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
        bounds = get_spec(name).ranges.get(key)
        values = value if isinstance(value, (tuple, list)) else (value,)
        if bounds is not None and not all(is_number(item) and item in bounds for item in values):
            raise ValueError(f"{name}: hyperparameter {key}={value!r} is out of its range {bounds.describe()}"
                             f"{' (every element)' if values is value else ''}; pass e.g. -p '{key}={defaults[key]!r}'")


def is_number(value: Any) -> bool:
    """A real number that is not a bool (True is a mistake, not 1)."""
    return isinstance(value, Real) and not isinstance(value, bool)


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
