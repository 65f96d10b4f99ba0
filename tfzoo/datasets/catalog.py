"""The built-in datasets by name: `load_dataset(name, **options)` and `list_datasets()`.

The table names each loader by module and function, imported when that dataset is loaded: the names (for
`tfzoo train --help` and its `--dataset` choices) are known without importing TensorFlow."""
from __future__ import annotations

import importlib
import inspect
from typing import TYPE_CHECKING, Any, Callable

from tfzoo.errors import DataError

if TYPE_CHECKING:
    from tfzoo.datasets.base import Dataset

_LOADERS: dict[str, str] = {
    "synthetic_regression": "tfzoo.datasets.synthetic:synthetic_regression",
    "synthetic_logistic": "tfzoo.datasets.synthetic:synthetic_logistic",
    "synthetic_binary": "tfzoo.datasets.synthetic:synthetic_binary",
    "sequence_order": "tfzoo.datasets.sequence:sequence_order",
    "mnist": "tfzoo.datasets.mnist:load_mnist",
    "digits": "tfzoo.datasets.mnist:load_digits",
    "csv": "tfzoo.datasets.tabular:load_csv",
    "files": "tfzoo.datasets.files:load_files",
    "python_docs": "tfzoo.datasets.text:python_docs",
    "python_docs_headlines": "tfzoo.datasets.text:python_docs_headlines",
    "library_docs": "tfzoo.datasets.docstrings:library_docs",
    "library_docs_headlines": "tfzoo.datasets.docstrings:library_docs_headlines",
    "debian_descriptions": "tfzoo.datasets.debian:debian_descriptions",
    "text_file": "tfzoo.datasets.text:text_file",
    "headline_csv": "tfzoo.datasets.text:headline_csv",
}
# Datasets read from the user's files: chosen by their own keywords (csv=, train_files=, ...), never by name alone.
FILE_DATASETS = ("csv", "files", "text_file", "headline_csv")


def list_datasets() -> list[str]:
    """Names `load_dataset` accepts, sorted."""
    return sorted(_LOADERS)


def named_datasets() -> list[str]:
    """The built-in datasets `choose_dataset(dataset=NAME)` (and `tfzoo train --dataset`) can pick, sorted."""
    return [name for name in list_datasets() if name not in FILE_DATASETS]


def loader(name: str) -> Callable[..., Dataset]:
    """The function that loads dataset `name` (a name of `list_datasets()`)."""
    module, function = _LOADERS[name].split(":")
    return getattr(importlib.import_module(module), function)


def load_dataset(name: str, *, seed: int = 0, **options: Any) -> Dataset:
    """Load dataset `name` with its `options`; `seed` drives every random choice (data and split)."""
    if name not in _LOADERS:
        raise DataError(f"unknown dataset {name!r}; known datasets: {', '.join(list_datasets())}")
    load = loader(name)
    parameters = inspect.signature(load).parameters
    valid = [option for option in parameters if option != "seed"]
    unknown = sorted(set(options) - set(valid))
    if unknown:
        raise DataError(
            f"dataset {name!r} has no option {', '.join(unknown)}; valid options: {', '.join(valid) or 'none'}"
        )
    missing = [option for option in valid if parameters[option].default is inspect.Parameter.empty
               and option not in options]
    if missing:
        raise DataError(f"dataset {name!r} needs option {', '.join(missing)} (valid options: {', '.join(valid)})")
    return load(seed=seed, **options)
