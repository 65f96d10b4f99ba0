"""tfzoo.datasets: every loader, the shared split, the IDX reader and the errors users see."""
from __future__ import annotations

import gzip
import json
import re
import struct
from pathlib import Path

import keras
import numpy as np
import pytest
from conftest import MNIST_T10K
from sklearn.linear_model import LogisticRegression
from sklearn.neural_network import MLPClassifier

from tfzoo.datasets import DataError, DataSplits, list_datasets, load_csv, load_dataset, load_mnist, read_idx
from tfzoo.datasets.splits import split_indices
from tfzoo.datasets.synthetic import regression_coefficients

T10K_LABEL_COUNTS = [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]


def write_idx(path: Path, array: np.ndarray) -> Path:
    """An IDX file of uint8 `array`, gzipped when the name ends in .gz."""
    data = b"\x00\x00\x08" + bytes([array.ndim]) + struct.pack(f">{array.ndim}I", *array.shape)
    data += array.astype(np.uint8).tobytes()
    path.write_bytes(gzip.compress(data) if path.suffix == ".gz" else data)
    return path


def write_csv(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


def good_csv(path: Path, rows: int = 60, features: int = 7) -> Path:
    rng = np.random.default_rng(0)
    header = ",".join([f"f{i}" for i in range(features)] + ["label"])
    lines = [",".join(f"{v:.4f}" for v in rng.normal(size=features)) + f",{i % 2}" for i in range(rows)]
    return write_csv(path, "\n".join([header, *lines]) + "\n")


def row_keys(x: np.ndarray) -> set[bytes]:
    return {row.tobytes() for row in x}


def features(data: DataSplits, split: str) -> np.ndarray:
    """A split's features as one array: a table's columns (all numeric here) stacked in column order."""
    x = data.arrays(split)[0]
    return np.stack([x[column.input] for column in data.schema.columns], axis=1) if data.schema else x


def assert_disjoint(data: DataSplits) -> None:
    # Every pool here is free of duplicate examples, so disjoint contents mean disjoint example indices.
    splits = ("train", "validation", "test")
    train, val, test = (row_keys(features(data, split)) for split in splits)
    assert [len(train), len(val), len(test)] == [data.num_examples(split) for split in splits]
    assert not train & val and not train & test and not val & test


@pytest.fixture
def options(name: str, tmp_path: Path) -> dict:
    """load_dataset options that make dataset `name` loadable here."""
    if name == "mnist":
        return {"data_dir": str(MNIST_T10K)}
    if name == "csv":
        return {"path": str(good_csv(tmp_path / "data.csv")), "target": "label", "task": "binary"}
    return {}


# --- every named dataset -----------------------------------------------------------------------------------------

EXPECTED = {  # name: (task, example shape, num_classes)
    "synthetic_regression": ("regression", (10,), None),
    "synthetic_logistic": ("binary", (2,), None),
    "synthetic_binary": ("binary", (8,), None),
    "sequence_order": ("binary", (10, 10), None),
    "mnist": ("multiclass", (28, 28), 10),
    "digits": ("multiclass", (28, 28), 10),
    "csv": ("binary", (7,), None),
}


# Token datasets: tests/test_text_data.py, tests/test_headline_eval.py, tests/test_docstrings_data.py and
# tests/test_debian_data.py.
TEXT_DATASETS = ("debian_descriptions", "headline_csv", "library_docs", "library_docs_headlines", "python_docs",
                 "python_docs_headlines", "text_file")


def test_list_datasets_is_sorted_and_complete():
    assert list_datasets() == sorted([*EXPECTED, *TEXT_DATASETS, "files"])  # files: tests/test_streaming_data.py


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_dataset_loads_with_disjoint_typed_splits(name, options):
    task, shape, num_classes = EXPECTED[name]
    data = load_dataset(name, seed=3, **options)
    assert (data.task, data.input_shape, data.num_classes) == (task, shape, num_classes)
    for split in ("train", "validation", "test"):
        x, y = features(data, split), data.arrays(split)[1]
        assert x.dtype == np.float32 and x.shape[1:] == shape
        if task == "multiclass":
            assert y.dtype == np.int64 and y.shape == (len(x),)
            assert set(np.unique(y)) <= set(range(10))
        else:
            assert y.dtype == np.float32 and y.shape == (len(x), 1)
        if task == "binary":
            assert set(np.unique(y)) <= {0.0, 1.0}
    assert_disjoint(data)


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_source_rebuilds_the_same_data_and_seed_changes_it(name, options):
    data = load_dataset(name, seed=1, **options)
    # The trainer stores `source` in config.json, so it must survive a JSON round trip.
    source = json.loads(json.dumps(data.source))
    assert source["name"] == name and source["seed"] == 1
    assert load_dataset(**source).fingerprint == data.fingerprint
    assert load_dataset(**{**source, "seed": 2}).fingerprint != data.fingerprint


def test_unknown_dataset_lists_the_known_ones():
    with pytest.raises(DataError, match="unknown dataset 'mnsit'") as error:
        load_dataset("mnsit")
    assert all(name in str(error.value) for name in list_datasets())


def test_unknown_option_names_the_valid_ones():
    with pytest.raises(DataError, match="no option num_rows") as error:
        load_dataset("synthetic_regression", num_rows=5)
    assert "num_features, num_examples, noise" in str(error.value)


def test_csv_without_its_required_options_says_which():
    with pytest.raises(DataError, match="needs option path, target"):
        load_dataset("csv", task="binary")


# --- the shared split and the tf.data pipeline --------------------------------------------------------------------

def test_split_indices_are_disjoint_seeded_and_cover_everything():
    train, val, test = split_indices(1000, seed=5, validation_fraction=0.15, test_fraction=0.15)
    assert (len(train), len(val), len(test)) == (700, 150, 150)
    assert sorted(np.concatenate([train, val, test])) == list(range(1000))
    again = split_indices(1000, seed=5, validation_fraction=0.15, test_fraction=0.15)
    other = split_indices(1000, seed=6, validation_fraction=0.15, test_fraction=0.15)
    assert all(np.array_equal(a, b) for a, b in zip((train, val, test), again))
    assert not np.array_equal(test, other[2])


@pytest.mark.parametrize("fractions", [(0.5, 0.5), (-0.1, 0.2), (0.2, 1.0)])
def test_split_rejects_fractions_that_leave_no_training_data(fractions):
    with pytest.raises(DataError, match="fraction"):
        split_indices(100, seed=0, validation_fraction=fractions[0], test_fraction=fractions[1])


def test_pipeline_batches_shuffles_reproducibly_and_covers_the_split():
    data = load_dataset("synthetic_regression", num_examples=300)  # 210 training examples
    x, y = data.arrays("train")
    batches = list(data.pipeline("train", 64).as_numpy_iterator())
    assert [b[0].shape for b in batches] == [(64, 10)] * 3 + [(18, 10)]
    assert [b[1].shape for b in batches] == [(64, 1)] * 3 + [(18, 1)]
    assert np.array_equal(np.concatenate([b[0] for b in batches]), x)

    def order(seed: int) -> np.ndarray:
        return np.concatenate([b[1] for b in data.pipeline("train", 64, shuffle=True, seed=seed)])

    first = order(7)
    assert np.array_equal(first, order(7))
    assert not np.array_equal(first, y) and not np.array_equal(first, order(8))
    assert np.array_equal(np.sort(first, axis=0), np.sort(y, axis=0))


# --- the synthetic datasets learn what they promise ---------------------------------------------------------------

def test_regression_least_squares_recovers_the_true_coefficients():
    data = load_dataset("synthetic_regression", seed=2)  # b = 0.98: a wrong intercept shows
    design = np.hstack([data.x_train, np.ones((len(data.x_train), 1), np.float32)])
    fitted, *_ = np.linalg.lstsq(design, data.y_train[:, 0], rcond=None)
    w, b = regression_coefficients(10, seed=2)
    np.testing.assert_allclose(fitted[:-1], w, atol=0.05)
    assert abs(fitted[-1] - b) < 0.05


def test_logistic_data_is_learnable_by_a_linear_model():
    data = load_dataset("synthetic_logistic", seed=2)
    model = LogisticRegression().fit(data.x_train, data.y_train[:, 0])
    assert model.score(data.x_test, data.y_test[:, 0]) >= 0.95
    assert 0.25 < data.y_train.mean() < 0.75


def test_binary_data_needs_the_hidden_layers():
    data = load_dataset("synthetic_binary", seed=2)
    linear = LogisticRegression().fit(data.x_train, data.y_train[:, 0]).score(data.x_test, data.y_test[:, 0])
    mlp = MLPClassifier((10, 5), max_iter=1000, random_state=0).fit(data.x_train, data.y_train[:, 0])
    assert mlp.score(data.x_test, data.y_test[:, 0]) >= 0.90
    assert linear < 0.85


def spike_order_labels(x: np.ndarray) -> np.ndarray:
    """1 where feature 0 spikes before feature 1: the rule sequence_order's labels should follow."""
    return (x[:, :, 0].argmax(axis=1) < x[:, :, 1].argmax(axis=1)).astype(np.float32)


def test_sequence_label_depends_only_on_order():
    data = load_dataset("sequence_order", seed=5)
    x, y = data.x_train, data.y_train[:, 0]
    assert np.array_equal(spike_order_labels(x), y)
    # Reversal keeps every frame but flips every label, so a model that ignores order is at chance.
    assert np.array_equal(spike_order_labels(x[:, ::-1, :]), 1 - y)
    assert 0.45 < y.mean() < 0.55


# --- digits ------------------------------------------------------------------------------------------------------

def test_digits_are_mnist_like():
    data = load_dataset("digits")
    x = np.concatenate([data.x_train, data.x_val, data.x_test])
    assert x.shape == (1797, 28, 28)
    assert (len(data.x_train), len(data.x_val), len(data.x_test)) == (1258, 180, 359)
    assert x.min() >= 0 and 250 <= x.max() <= 255  # raw pixel scale, not 0..16 or 0..1
    border = np.ones((28, 28), bool)
    border[4:24, 4:24] = False
    assert np.abs(x[:, border]).max() < 1e-3
    assert np.bincount(np.concatenate([data.y_train, data.y_val, data.y_test])).min() > 170


# --- IDX files and MNIST -----------------------------------------------------------------------------------------

def test_read_idx_on_the_real_mnist_test_files(tmp_path):
    images = read_idx(MNIST_T10K / "t10k-images-idx3-ubyte.gz")
    labels = read_idx(MNIST_T10K / "t10k-labels-idx1-ubyte.gz")
    assert images.shape == (10000, 28, 28) and labels.shape == (10000,)
    assert images.dtype == np.uint8 and labels.dtype == np.uint8
    assert np.bincount(labels).tolist() == T10K_LABEL_COUNTS
    plain = tmp_path / "t10k-labels-idx1-ubyte"
    plain.write_bytes(gzip.decompress((MNIST_T10K / "t10k-labels-idx1-ubyte.gz").read_bytes()))
    assert np.array_equal(read_idx(plain), labels)


def test_read_idx_round_trips_gzipped_and_plain_files(tmp_path):
    array = np.arange(24, dtype=np.uint8).reshape(2, 3, 4)
    assert np.array_equal(read_idx(write_idx(tmp_path / "a.gz", array)), array)
    assert np.array_equal(read_idx(write_idx(tmp_path / "a", array)), array)


@pytest.mark.parametrize(
    "corrupt, message",
    [
        (lambda raw: b"\x12\x34" + raw[2:], "bad magic number"),
        (lambda raw: raw[:2] + b"\x0d" + raw[3:], "data type 0x0d"),
        (lambda raw: raw[:-1], "damaged or incomplete"),
        (lambda raw: raw[:6], "truncated IDX header"),
    ],
)
def test_read_idx_rejects_damaged_files(tmp_path, corrupt, message):
    raw = (write_idx(tmp_path / "good", np.zeros((3, 28, 28), np.uint8))).read_bytes()
    bad = tmp_path / "bad.gz"
    bad.write_bytes(gzip.compress(corrupt(raw)))
    with pytest.raises(DataError, match=message):
        read_idx(bad)


def test_mnist_from_the_t10k_folder_is_a_fixed_8000_2000_split():
    data = load_mnist(MNIST_T10K, seed=0)
    assert data.x_train.shape == (7200, 28, 28) and data.x_val.shape == (800, 28, 28)
    assert data.x_test.shape == (2000, 28, 28) and data.y_test.shape == (2000,)
    assert data.x_train.dtype == np.float32 and data.x_train.max() == 255
    images = read_idx(MNIST_T10K / "t10k-images-idx3-ubyte.gz").astype(np.float32)
    # The held-out 2,000 are the last images; training and validation are exactly the first 8,000.
    assert np.array_equal(data.x_test, images[8000:])
    assert row_keys(data.x_train) | row_keys(data.x_val) == row_keys(images[:8000])
    assert_disjoint(data)
    assert np.array_equal(load_mnist(MNIST_T10K, seed=9).x_test, data.x_test)


def fake_mnist_folder(folder: Path, train: int, test: int) -> Path:
    rng = np.random.default_rng(0)
    folder.mkdir()
    for prefix, count in (("train", train), ("t10k", test)):
        if count:
            write_idx(folder / f"{prefix}-images-idx3-ubyte.gz", rng.integers(0, 256, (count, 28, 28)))
            write_idx(folder / f"{prefix}-labels-idx1-ubyte", rng.integers(0, 10, count))
    return folder


def test_mnist_with_train_files_tests_on_all_of_t10k(tmp_path):
    folder = fake_mnist_folder(tmp_path / "mnist", train=50, test=20)
    data = load_mnist(folder)
    assert (len(data.x_train), len(data.x_val), len(data.x_test)) == (45, 5, 20)
    assert np.array_equal(data.x_test, read_idx(folder / "t10k-images-idx3-ubyte.gz"))
    assert data.source == {"name": "mnist", "seed": 0, "data_dir": str(folder)}


def test_mnist_folder_errors_name_what_is_missing(tmp_path):
    with pytest.raises(DataError, match="does not exist"):
        load_mnist(tmp_path / "nowhere")
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match=r"t10k-images-idx3-ubyte\[\.gz\], t10k-labels-idx1-ubyte\[\.gz\]"):
        load_mnist(tmp_path / "empty")
    folder = fake_mnist_folder(tmp_path / "half", train=10, test=10)
    (folder / "train-labels-idx1-ubyte").unlink()
    with pytest.raises(DataError, match="only one of train-images"):
        load_mnist(folder)


def test_mnist_rejects_images_and_labels_of_different_sizes(tmp_path):
    folder = fake_mnist_folder(tmp_path / "mnist", train=0, test=10)
    write_idx(folder / "t10k-labels-idx1-ubyte", np.zeros(9, np.uint8))
    with pytest.raises(DataError, match="10 images but labels of shape"):
        load_mnist(folder)


def test_mnist_offline_without_cache_points_to_the_alternatives(tmp_path, monkeypatch):
    monkeypatch.setenv("KERAS_HOME", str(tmp_path))

    def offline(*args, **kwargs):
        # What keras.utils.get_file raises when the download fails for lack of a network.
        raise Exception("URL fetch failure on https://storage.googleapis.com/tensorflow/tf-keras-datasets/"
                        "mnist.npz: None -- [Errno -3] Temporary failure in name resolution")

    monkeypatch.setattr(keras.datasets.mnist, "load_data", offline)
    with pytest.raises(DataError) as error:
        load_dataset("mnist")
    assert "--data-dir" in str(error.value) and "--dataset digits" in str(error.value)


def test_mnist_uses_the_keras_cache_without_downloading(tmp_path, monkeypatch):
    monkeypatch.setenv("KERAS_HOME", str(tmp_path))
    monkeypatch.setattr(keras.datasets.mnist, "load_data", lambda *a, **k: pytest.fail("must not download"))
    rng = np.random.default_rng(0)
    (tmp_path / "datasets").mkdir()
    images, labels = rng.integers(0, 256, (40, 28, 28), dtype=np.uint8), rng.integers(0, 10, 40, dtype=np.uint8)
    np.savez(tmp_path / "datasets" / "mnist.npz",
             x_train=images[:30], y_train=labels[:30], x_test=images[30:], y_test=labels[30:])
    data = load_dataset("mnist")
    assert (len(data.x_train), len(data.x_val), len(data.x_test)) == (27, 3, 10)
    assert data.source == {"name": "mnist", "seed": 0, "data_dir": None}


# --- CSV files ---------------------------------------------------------------------------------------------------

def test_csv_with_seven_feature_columns(tmp_path):
    data = load_csv(good_csv(tmp_path / "seven.csv"), "label", task="binary")
    assert data.input_shape == (7,)
    assert data.feature_names == tuple(f"f{i}" for i in range(7))
    assert [data.num_examples(split) for split in ("train", "validation", "test")] == [42, 9, 9]
    assert all(column.dtype == np.float32 and column.shape == (42,) for column in data.x_train.values())
    assert data.source["path"] == str(tmp_path / "seven.csv") and Path(data.source["path"]).is_absolute()


def test_csv_regression_and_multiclass_labels(tmp_path):
    path = write_csv(tmp_path / "m.csv", "a,b,y\n" + "".join(f"{i},{i * 2},{i % 3}\n" for i in range(40)))
    regression = load_csv(path, "y", task="regression")
    assert regression.y_train.dtype == np.float32 and regression.y_train.shape[1] == 1
    multiclass = load_csv(path, "y", task="multiclass")
    assert multiclass.y_train.dtype == np.int64 and multiclass.num_classes == 3


@pytest.mark.parametrize(
    "text, task, problem, fix",
    [
        ("", "binary", "no data rows", "header line"),
        ("a,b,label\n", "binary", "no data rows", "header line"),
        ("a,b,y\n1,2,0\n", "binary", "no column 'label'; its columns are a, b, y", "--target"),
        ("a,b,label\n1,2,0\n1,2,1\n", "binary", "too few examples", "provide more"),
    ],
    ids=["empty-file", "header-only", "missing-target", "too-few-rows"],  # a table's own: tests/test_tables.py
)
def test_csv_errors_name_the_problem_and_the_fix(tmp_path, text, task, problem, fix):
    path = write_csv(tmp_path / "bad.csv", text)
    with pytest.raises(DataError, match=problem) as error:
        load_csv(path, "label", task=task)
    assert fix in str(error.value)


def test_csv_missing_file_names_the_path(tmp_path):
    with pytest.raises(DataError, match=re.escape(f"CSV file not found: {tmp_path / 'nope.csv'}")):
        load_dataset("csv", path=str(tmp_path / "nope.csv"), target="label", task="binary")
