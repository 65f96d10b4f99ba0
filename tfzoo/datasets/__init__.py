"""Datasets: each loader returns a Dataset (a DataSplits in memory, or a FileDataset streamed from files) whose
`source` rebuilds it with `load_dataset(**source)` (the catalog of names), and `choose_dataset` picks one from the
data flags of `tfzoo train`.

The names below are imported on first use (PEP 562): `tfzoo.datasets.catalog` lists the datasets without importing
TensorFlow, which every loader needs."""
from __future__ import annotations

from tfzoo.lazy import lazy_names

_API = {
    "DataError": "tfzoo.errors", "Dataset": "tfzoo.datasets.base", "DataSplits": "tfzoo.datasets.base",
    "list_datasets": "tfzoo.datasets.catalog", "load_dataset": "tfzoo.datasets.catalog",
    "FileDataset": "tfzoo.datasets.files", "load_files": "tfzoo.datasets.files",
    "write_tfrecord_shards": "tfzoo.datasets.files", "load_digits": "tfzoo.datasets.mnist",
    "load_mnist": "tfzoo.datasets.mnist", "read_idx": "tfzoo.datasets.mnist", "choose_dataset": "tfzoo.datasets.sources",
    "load_csv": "tfzoo.datasets.tabular", "headline_csv": "tfzoo.datasets.text", "python_docs": "tfzoo.datasets.text",
    "text_file": "tfzoo.datasets.text",
}

__all__ = sorted(_API)


__getattr__, __dir__ = lazy_names(__name__, _API)
