"""The built-in datasets by name: `load_dataset(name, **options)` and `list_datasets()`."""
from __future__ import annotations

import inspect
from typing import Any, Callable

from tfzoo.datasets.base import DataError, Dataset
from tfzoo.datasets.files import load_files
from tfzoo.datasets.mnist import load_digits, load_mnist
from tfzoo.datasets.sequence import sequence_order
from tfzoo.datasets.synthetic import synthetic_binary, synthetic_logistic, synthetic_regression
from tfzoo.datasets.tabular import load_csv
from tfzoo.datasets.text import headline_csv, python_docs, python_docs_headlines, text_file

_LOADERS: dict[str, Callable[..., Dataset]] = {
    "synthetic_regression": synthetic_regression,
    "synthetic_logistic": synthetic_logistic,
    "synthetic_binary": synthetic_binary,
    "sequence_order": sequence_order,
    "mnist": load_mnist,
    "digits": load_digits,
    "csv": load_csv,
    "files": load_files,
    "python_docs": python_docs,
    "python_docs_headlines": python_docs_headlines,
    "text_file": text_file,
    "headline_csv": headline_csv,
}


def list_datasets() -> list[str]:
    """Names `load_dataset` accepts, sorted."""
    return sorted(_LOADERS)


def load_dataset(name: str, *, seed: int = 0, **options: Any) -> Dataset:
    """Load dataset `name` with its `options`; `seed` drives every random choice (data and split)."""
    if name not in _LOADERS:
        raise DataError(f"unknown dataset {name!r}; known datasets: {', '.join(list_datasets())}")
    loader = _LOADERS[name]
    parameters = inspect.signature(loader).parameters
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
    return loader(seed=seed, **options)
