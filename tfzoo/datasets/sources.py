"""Which dataset a training run reads: a built-in one by name, or the user's files (a CSV, streamed CSV/TFRecord
files, a text file, MNIST IDX files). The keywords mirror `tfzoo train`'s data flags, and the errors name the
flags, so the command line and the Python API refuse the same combinations in the same words."""
from __future__ import annotations

from collections.abc import Sequence

from tfzoo.datasets.base import DataError, Dataset
from tfzoo.datasets.catalog import load_dataset
from tfzoo.datasets.files import load_files
from tfzoo.datasets.tabular import load_csv
from tfzoo.tasks import get_task

def choose_dataset(
    *,
    task: str,
    dataset: str | None = None,
    csv: str | None = None,
    target: str | None = None,
    train_files: str | None = None,
    validation_files: str | None = None,
    test_files: str | None = None,
    text_file: str | None = None,
    text_column: str | None = None,
    data_dir: str | None = None,
    categorical: Sequence[str] = (),
    drop: Sequence[str] = (),
    positive_class: str | None = None,
    seed: int = 0,
    validation_fraction: float | None = None,
    test_fraction: float | None = None,
) -> Dataset | str | None:
    """The `dataset` argument of `tfzoo.train` for a model of `task` (a task name) that these sources describe.

    Each keyword is the `tfzoo train` flag of the same name (train_files is --train-files). A file source is
    loaded here (seeded with `seed`); a built-in `dataset` is returned as its name, and no source at all as None
    (the model's default dataset). Conflicting or incomplete sources raise DataError naming the flags to pass.
    """
    text_task = get_task(task).reads_text  # --text-file, and --csv as article/headline pairs
    # The split of a file the user gives; None: the loader's (0.15 each). Built-in data keeps its own split.
    fractions = {key: value for key, value in (("validation_fraction", validation_fraction),
                                                ("test_fraction", test_fraction)) if value is not None}
    if fractions and not (csv or text_file):
        raise DataError("--validation-fraction and --test-fraction split a --csv or --text-file; built-in datasets, "
                        "--data-dir and the --*-files keep their own splits")
    if (categorical or drop or positive_class is not None) and (text_task or not (csv or train_files)):
        raise DataError("--categorical, --drop and --positive-class describe the columns of a table: use them with "
                        "--csv FILE --target COLUMN or with --train-files GLOB (and the other --*-files)")
    streamed = (train_files, validation_files, test_files)
    if any(streamed):
        if not (all(streamed) and target):
            raise DataError("streamed data needs all of --train-files GLOB --validation-files GLOB --test-files GLOB "
                            "--target COLUMN")
        if csv or dataset or data_dir or text_file or text_column or text_task:
            raise DataError("--train-files cannot be combined with --csv, --dataset, --data-dir or --text-file, and "
                            "streams tables only (not for text_generator); pick one data source")
        return load_files(*streamed, target, task=task, categorical=categorical, drop=drop,
                          positive_class=positive_class, seed=seed)
    if text_file:
        if csv or target or text_column or dataset or data_dir:
            raise DataError("--text-file cannot be combined with --dataset, --csv or --data-dir; pick one data source")
        return load_dataset("text_file", seed=seed, path=text_file, **fractions)
    if text_column and not (text_task and csv):
        raise DataError("--text-column is the article column of a --csv for text_generator: "
                        "--csv FILE --text-column ARTICLE --target HEADLINE")
    if csv or target:
        if not (csv and target):
            raise DataError("--csv and --target go together: --csv FILE --target COLUMN")
        if dataset or data_dir:
            raise DataError("--csv cannot be combined with --dataset or --data-dir; pick one data source")
        if text_task:
            if not text_column:
                raise DataError("a language model reads --csv as article/headline pairs: "
                                "--csv FILE --text-column ARTICLE --target HEADLINE")
            return load_dataset("headline_csv", seed=seed, path=csv, text_column=text_column, target=target,
                                **fractions)
        return load_csv(csv, target, task=task, categorical=categorical, drop=drop, positive_class=positive_class,
                        seed=seed, **fractions)
    if data_dir:
        if dataset not in (None, "mnist"):
            raise DataError("--data-dir holds MNIST IDX files; use it with --dataset mnist (or no --dataset)")
        return load_dataset("mnist", seed=seed, data_dir=data_dir)
    return dataset
