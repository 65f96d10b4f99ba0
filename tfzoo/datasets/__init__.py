"""Datasets: each loader returns a Dataset (a DataSplits in memory, or a FileDataset streamed from files) whose
`source` rebuilds it with `load_dataset(**source)` (the catalog of names), and `choose_dataset` picks one from the
data flags of `tfzoo train`."""
from __future__ import annotations

from tfzoo.datasets.base import DataError, Dataset, DataSplits
from tfzoo.datasets.catalog import list_datasets, load_dataset
from tfzoo.datasets.files import FileDataset, load_files, write_tfrecord_shards
from tfzoo.datasets.mnist import load_digits, load_mnist, read_idx
from tfzoo.datasets.sources import choose_dataset
from tfzoo.datasets.tabular import load_csv
from tfzoo.datasets.text import headline_csv, python_docs, text_file

__all__ = ["DataError", "DataSplits", "Dataset", "FileDataset", "choose_dataset", "headline_csv", "list_datasets",
           "load_csv", "load_dataset", "load_digits", "load_files", "load_mnist", "python_docs", "read_idx",
           "text_file", "write_tfrecord_shards"]
