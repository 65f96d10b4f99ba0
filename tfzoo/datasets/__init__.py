"""Datasets by name: each loader returns a Dataset (a DataSplits in memory, or a FileDataset streamed from files)
whose `source` rebuilds it with `load_dataset(**source)`."""
from __future__ import annotations

import inspect
from typing import Any, Callable

from tfzoo.datasets.base import DataError, Dataset, DataSplits
from tfzoo.datasets.files import FileDataset, load_files, write_tfrecord_shards
from tfzoo.datasets.mnist import load_digits, load_mnist, read_idx
from tfzoo.datasets.sequence import sequence_order
from tfzoo.datasets.synthetic import synthetic_binary, synthetic_logistic, synthetic_regression
from tfzoo.datasets.tabular import load_csv
from tfzoo.datasets.text import headline_csv, python_docs, text_file

__all__ = ["DataError", "DataSplits", "Dataset", "FileDataset", "choose_dataset", "headline_csv", "list_datasets",
           "load_csv", "load_dataset", "load_digits", "load_files", "load_mnist", "python_docs", "read_idx",
           "text_file", "write_tfrecord_shards"]

_LOADERS: dict[str, Callable[..., DataSplits]] = {
    "synthetic_regression": synthetic_regression,
    "synthetic_logistic": synthetic_logistic,
    "synthetic_binary": synthetic_binary,
    "sequence_order": sequence_order,
    "mnist": load_mnist,
    "digits": load_digits,
    "csv": load_csv,
    "files": load_files,
    "python_docs": python_docs,
    "text_file": text_file,
    "headline_csv": headline_csv,
}


def list_datasets() -> list[str]:
    """Names `load_dataset` accepts, sorted."""
    return sorted(_LOADERS)


def load_dataset(name: str, *, seed: int = 0, **options: Any) -> DataSplits:
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


# Last: choosing a dataset goes through the loaders above.
from tfzoo.datasets.sources import choose_dataset  # noqa: E402
