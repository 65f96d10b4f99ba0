"""tfzoo.datasets.choose_dataset, called directly: each data source `tfzoo train` takes, and each refusal."""
from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest
from test_datasets import fake_mnist_folder

from tfzoo.datasets import DataError, DataSplits, FileDataset, choose_dataset, list_datasets, read_idx
from tfzoo.datasets.catalog import FILE_DATASETS, named_datasets

STREAMED = {"train_files": "train-*.csv", "validation_files": "val.csv", "test_files": "test.csv"}


@pytest.mark.parametrize("task, sources, message", [
    ("binary", {"train_files": "train-*.csv"}, "streamed data needs all of --train-files GLOB --validation-files"),
    ("binary", STREAMED, "streamed data needs all of --train-files GLOB --validation-files"),
    ("binary", {**STREAMED, "target": "y", "csv": "t.csv"}, "--train-files cannot be combined with --csv"),
    ("binary", {**STREAMED, "target": "y", "dataset": "digits"}, "--train-files cannot be combined with --csv"),
    ("binary", {**STREAMED, "target": "y", "data_dir": "mnist"}, "--train-files cannot be combined with --csv"),
    ("binary", {**STREAMED, "target": "y", "text_file": "a.txt"}, "--train-files cannot be combined with --csv"),
    ("binary", {**STREAMED, "target": "y", "text_column": "a"}, "--train-files cannot be combined with --csv"),
    ("language_model", {**STREAMED, "target": "y"}, "streams tables only (not for text_generator)"),
    ("language_model", {"text_file": "a.txt", "csv": "t.csv"}, "--text-file cannot be combined with --dataset"),
    ("language_model", {"text_file": "a.txt", "target": "y"}, "--text-file cannot be combined with --dataset"),
    ("language_model", {"text_file": "a.txt", "text_column": "a"}, "--text-file cannot be combined with --dataset"),
    ("language_model", {"text_file": "a.txt", "dataset": "python_docs"}, "--text-file cannot be combined"),
    ("language_model", {"text_file": "a.txt", "data_dir": "mnist"}, "--text-file cannot be combined"),
    ("binary", {"csv": "t.csv", "target": "y", "text_column": "a"}, "--text-column is the article column of a --csv"),
    ("language_model", {"text_column": "a", "target": "y"}, "--text-column is the article column of a --csv"),
    ("binary", {"csv": "t.csv"}, "--csv and --target go together: --csv FILE --target COLUMN"),
    ("binary", {"target": "y"}, "--csv and --target go together: --csv FILE --target COLUMN"),
    ("binary", {"csv": "t.csv", "target": "y", "dataset": "digits"}, "--csv cannot be combined with --dataset"),
    ("binary", {"csv": "t.csv", "target": "y", "data_dir": "mnist"}, "--csv cannot be combined with --dataset"),
    ("language_model", {"csv": "t.csv", "target": "y"},
     "a language model reads --csv as article/headline pairs: --csv FILE --text-column ARTICLE --target HEADLINE"),
    ("multiclass", {"data_dir": "mnist", "dataset": "digits"}, "--data-dir holds MNIST IDX files; use it with"),
])
def test_conflicting_or_incomplete_sources_are_refused_in_one_line(tmp_path, monkeypatch, task, sources, message):
    # None of the named files exists: a refusal that came too late would be a loader's "not found" instead.
    monkeypatch.chdir(tmp_path)
    with pytest.raises(DataError, match=re.escape(message)) as refused:
        choose_dataset(task=task, **sources)
    assert "\n" not in str(refused.value)


def test_no_source_is_the_model_default_and_a_name_is_passed_on():
    assert choose_dataset(task="binary") is None
    assert choose_dataset(task="multiclass", dataset="digits", seed=4) == "digits"


def test_named_datasets_are_the_built_in_ones_only():
    assert set(named_datasets()) == set(list_datasets()) - set(FILE_DATASETS)
    assert {"digits", "mnist", "python_docs"} <= set(named_datasets())
    assert not set(FILE_DATASETS) & set(named_datasets())


def write_table(path: Path, rows: int = 40) -> str:
    """A CSV of two features and a 0/1 label."""
    lines = ["a,b,label"] + [f"{i % 7},{(i * 3) % 5},{i % 2}" for i in range(rows)]
    path.write_text("\n".join(lines) + "\n")
    return str(path)


def test_a_csv_is_loaded_for_the_task_given(tmp_path):
    path = write_table(tmp_path / "table.csv")
    # 0/1 labels would suit binary too: the task given is the one the data is read for.
    data = choose_dataset(task="regression", csv=path, target="label", seed=5)
    assert isinstance(data, DataSplits) and (data.name, data.task) == ("csv", "regression")
    assert data.source["path"] == path and data.source["target"] == "label" and data.source["seed"] == 5
    assert data.input_shape == (2,)


def test_a_csv_for_a_language_model_is_article_headline_pairs(tmp_path):
    path = tmp_path / "news.csv"
    path.write_text("body,title\n" + "".join(f"article number {i} says things,headline {i}\n" for i in range(20)))
    data = choose_dataset(task="language_model", csv=str(path), text_column="body", target="title", seed=2)
    assert (data.name, data.task) == ("headline_csv", "language_model")
    assert (data.source["text_column"], data.source["target"], data.source["seed"]) == ("body", "title", 2)


def test_a_text_file_is_a_language_model_dataset(tmp_path):
    path = tmp_path / "book.txt"
    path.write_text("\n\n".join(f"paragraph {i}: some words to model." for i in range(20)) + "\n")
    data = choose_dataset(task="language_model", text_file=str(path))
    assert (data.name, data.task) == ("text_file", "language_model")
    assert data.source["path"] == str(path.resolve())


def test_the_split_fractions_flow_into_a_csv_and_a_text_file_and_are_recorded(tmp_path):
    """A "too few examples" error named validation_fraction / test_fraction, which tfzoo train had no flags for."""
    table = choose_dataset(task="regression", csv=write_table(tmp_path / "table.csv"), target="label",
                           validation_fraction=0.25, test_fraction=0.05)
    total = sum(table.num_examples(split) for split in ("train", "validation", "test"))
    assert (table.num_examples("validation"), table.num_examples("test")) == (round(total * 0.25), round(total * 0.05))
    assert (table.source["validation_fraction"], table.source["test_fraction"]) == (0.25, 0.05)
    book = tmp_path / "book.txt"
    book.write_text("\n\n".join(f"paragraph {i}: some words to model." for i in range(20)) + "\n")
    text = choose_dataset(task="language_model", text_file=str(book), test_fraction=0.3)
    assert (text.source["validation_fraction"], text.source["test_fraction"]) == (0.15, 0.3)
    with pytest.raises(DataError, match="too few examples to split: .* \\(tfzoo train: --validation-fraction, "
                                        "--test-fraction\\)"):
        choose_dataset(task="language_model", text_file=str(book), validation_fraction=0.01)
    with pytest.raises(DataError, match="--validation-fraction and --test-fraction split a --csv or --text-file"):
        choose_dataset(task="binary", dataset="digits", test_fraction=0.2)


def test_streamed_files_are_read_for_the_task_given(tmp_path):
    for name in ("train-0.csv", "train-1.csv", "val.csv", "test.csv"):
        write_table(tmp_path / name, rows=10)
    globs = {split: str(tmp_path / pattern) for split, pattern in STREAMED.items()}
    data = choose_dataset(task="regression", target="label", seed=1, **globs)
    assert isinstance(data, FileDataset) and data.task == "regression"  # 0/1 labels alone would infer binary
    assert data.source["train"] == globs["train_files"] and data.source["target"] == "label"
    assert data.num_examples("train") == 20


@pytest.mark.parametrize("dataset", [None, "mnist"])
def test_a_data_dir_is_mnist_idx_files(tmp_path, dataset):
    folder = fake_mnist_folder(tmp_path / "mnist", train=30, test=10)
    data = choose_dataset(task="multiclass", data_dir=str(folder), dataset=dataset, seed=3)
    assert data.source == {"name": "mnist", "seed": 3, "data_dir": str(folder)}
    assert np.array_equal(data.x_test, read_idx(folder / "t10k-images-idx3-ubyte.gz"))
