"""Datasets streamed from CSV, gzipped CSV and TFRecord files: loading, checks, order, training, multi-worker."""
from __future__ import annotations

import gzip
import json
import os
import re
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import keras
import numpy as np
import pytest
import tensorflow as tf

import tfzoo
import tfzoo.tables.schema as schema_module
from tfzoo.cli import main
from tfzoo.datasets import (
    DataError,
    FileDataset,
    choose_dataset,
    load_csv,
    load_dataset,
    load_files,
    write_tfrecord_shards,
)
from tfzoo.datasets.base import steps_per_epoch
from tfzoo.datasets.splits import split_indices
from tfzoo.export.warmup import read_warmup

REPO = Path(__file__).resolve().parents[1]
LAUNCHER = REPO / "scripts" / "launch_local_workers.py"
SPLITS = ("train", "validation", "test")
SHARDS = {"train": 8, "validation": 2, "test": 2}


def csv_text(x: np.ndarray, y: np.ndarray, target: str = "label") -> str:
    header = ",".join([f"x{i}" for i in range(x.shape[1])] + [target])
    # %.9g writes every float32 exactly, so the files hold the very examples of the arrays.
    rows = [",".join(f"{v:.9g}" for v in features) + f",{label:.9g}" for features, label in zip(x, y[:, 0])]
    return "\n".join([header, *rows]) + "\n"


def write_shards(data, folder: Path, *, gz: bool = False) -> dict[str, str]:
    """Each split of `data` as SHARDS[split] CSV files (gzipped when asked); returns a glob per split."""
    folder.mkdir(parents=True, exist_ok=True)
    suffix = ".csv.gz" if gz else ".csv"
    for split in SPLITS:
        x, y = data.arrays(split)
        for index, rows in enumerate(np.array_split(np.arange(len(x)), SHARDS[split])):
            text = csv_text(x[rows], y[rows]).encode()
            (folder / f"{split}-{index:02d}{suffix}").write_bytes(gzip.compress(text) if gz else text)
    return {split: str(folder / f"{split}-*{suffix}") for split in SPLITS}


def matrix(features: dict) -> np.ndarray:
    """A numeric table's columns {input: [N]} (tensors or arrays) side by side, in name order (x0, x1, ... x7 here,
    the column order): [N, D]."""
    return np.stack([np.asarray(features[key]) for key in sorted(features)], axis=1)


def rows_of(pipeline) -> np.ndarray:
    """Every (features, label) row a pipeline yields, as one array sorted row-wise (for multiset comparisons)."""
    rows = np.concatenate([np.concatenate([matrix(x), y.numpy().reshape(len(y), -1)], axis=1) for x, y in pipeline])
    return rows[np.lexsort(rows.T[::-1])]


def rows_of_arrays(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    rows = np.concatenate([x, y.reshape(len(x), -1)], axis=1)
    return rows[np.lexsort(rows.T[::-1])]


@pytest.fixture(scope="module")
def binary():
    return load_dataset("synthetic_binary")


@pytest.fixture(scope="module")
def csv_globs(binary, tmp_path_factory) -> dict[str, str]:
    return write_shards(binary, tmp_path_factory.mktemp("csv"))


@pytest.fixture(scope="module")
def streamed(csv_globs) -> FileDataset:
    return load_files(csv_globs["train"], csv_globs["validation"], csv_globs["test"], "label")


# ------------------------------------------------------------------------------------------------ loading

def test_csv_shards_stream_the_same_examples_as_the_arrays(binary, streamed):
    assert (streamed.task, streamed.num_classes, streamed.input_shape) == ("binary", None, (8,))  # task inferred
    assert streamed.feature_names == tuple(f"x{i}" for i in range(8))
    for split in SPLITS:
        x, y = binary.arrays(split)
        assert streamed.num_examples(split) == len(x)
        assert len(streamed.files(split)) == SHARDS[split]
        batches = list(streamed.pipeline(split, 64))
        assert batches[0][0]["x0"].dtype == tf.float32 and batches[0][1].shape[1:] == (1,)
        np.testing.assert_array_equal(rows_of(batches), rows_of_arrays(x, y))
    shuffled = np.concatenate([matrix(x) for x, _ in streamed.pipeline("train", 64, shuffle=True, seed=1)])
    in_order = np.concatenate([matrix(x) for x, _ in streamed.pipeline("train", 64)])
    assert not np.array_equal(shuffled, in_order)
    np.testing.assert_array_equal(np.sort(shuffled, axis=0), np.sort(in_order, axis=0))  # the same rows
    first = matrix(streamed.first_features("test", 5))
    assert first.shape == (5, 8)
    assert {row.tobytes() for row in first} <= {row.tobytes() for row in binary.arrays("test")[0]}


def test_source_rebuilds_it_and_the_fingerprint_follows_the_content(streamed, csv_globs, tmp_path):
    source = json.loads(json.dumps(streamed.source))  # config.json keeps it
    assert source["name"] == "files" and source["task"] == "binary"
    assert load_dataset(**source).fingerprint == streamed.fingerprint
    # The same files elsewhere are the same data; one changed value is not.
    copy = tmp_path / "copy"
    copy.mkdir()
    for path in Path(csv_globs["train"]).parent.iterdir():
        (copy / path.name).write_bytes(path.read_bytes())
    moved = {split: str(copy / Path(pattern).name) for split, pattern in csv_globs.items()}
    assert load_files(moved["train"], moved["validation"], moved["test"], "label").fingerprint == streamed.fingerprint
    shard = copy / "train-03.csv"
    lines = shard.read_text().splitlines()
    lines[5] = lines[5].replace(lines[5].split(",")[0], "0.5", 1)
    shard.write_text("\n".join(lines) + "\n")
    assert load_files(moved["train"], moved["validation"], moved["test"], "label").fingerprint != streamed.fingerprint


@pytest.mark.slow
def test_gzipped_csv_and_tfrecord_shards_give_the_same_examples(binary, streamed, tmp_path):
    gz = write_shards(binary, tmp_path / "gz", gz=True)
    zipped = load_files(gz["train"], gz["validation"], gz["test"], "label")
    plain = write_shards(binary, tmp_path / "plain")
    records = {}
    for split in SPLITS:  # the writer on one whole CSV per split
        whole = tmp_path / f"{split}.csv"
        whole.write_text(csv_text(*binary.arrays(split)))
        paths = write_tfrecord_shards(str(whole), str(tmp_path / "tfr" / split), 3)
        assert [Path(p).name for p in paths] == [f"{split}-{i:05d}-of-00003.tfrecord" for i in range(3)]
        records[split] = str(tmp_path / "tfr" / split / "*.tfrecord")
    assert sorted(p.name for p in (tmp_path / "tfr" / "test").iterdir()) == [Path(p).name for p in paths]  # no temps
    sizes = [sum(1 for _ in tf.data.TFRecordDataset(p)) for p in paths]
    assert sum(sizes) == len(binary.x_test) and max(sizes) - min(sizes) <= 1
    tfrecord = load_files(records["train"], records["validation"], records["test"], "label")
    assert load_files(plain["train"], plain["validation"], plain["test"], "label").fingerprint == streamed.fingerprint
    assert zipped.fingerprint != streamed.fingerprint  # the file sizes differ, though the rows are the same
    for data in (zipped, tfrecord):
        assert (data.task, data.input_shape) == ("binary", (8,))
        for split in SPLITS:
            np.testing.assert_array_equal(rows_of(data.pipeline(split, 100)), rows_of_arrays(*binary.arrays(split)))


def test_task_is_inferred_from_the_target_or_checked_when_given(tmp_path):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(40, 3)).astype(np.float32)
    cases = {"regression": rng.normal(size=(40, 1)), "multiclass": (np.arange(40) % 3)[:, None].astype(float)}
    for task, y in cases.items():
        path = tmp_path / f"{task}.csv"
        path.write_text(csv_text(x, y))
        data = load_files(str(path), str(path), str(path), "label")
        assert data.task == task
        assert data.num_classes == (3 if task == "multiclass" else None)
        _, labels = next(iter(data.pipeline("test", 40)))
        assert labels.dtype == (tf.int64 if task == "multiclass" else tf.float32)
        np.testing.assert_array_equal(np.sort(labels.numpy().ravel()), np.sort(y.ravel().astype(np.float32)))
    multiclass = str(tmp_path / "multiclass.csv")
    # As load_csv: a binary task on three classes is multiclass (a binary model with num_classes trains on them).
    assert load_files(multiclass, multiclass, multiclass, "label", task="binary").task == "multiclass"
    assert load_files(multiclass, multiclass, multiclass, "label", task="regression").task == "regression"


# ------------------------------------------------------------------------------------------------- bad files

GOOD = "x0,x1,label\n" + "".join(f"{i * 0.5},{-i},{i % 2}\n" for i in range(20))


@pytest.mark.parametrize("text, problem, fix", [
    ("x0,x2,label\n1,2,0\n", r"has the columns x0, x2, label, but \S+good\.csv has x0, x1, label", "same header"),
    ("x0,x1,label\n1,2,0\n1,2\n", r"line 3: the row has 2 fields, the header 3", "one field per column"),
    ("", r"is empty", "a CSV needs a header line and data rows"),
    ("x0,x1,label\n", r"has a header but no data rows", "leave the file out of the glob"),
    # Past the rows checked up front: found by the counting pass, still with its line.
    ("x0,x1,label\n" + "1,2,0\n" * 30 + "1,2,0,4\n", r"line 32: the row has 4 fields", "an empty field is a missing"),
])
def test_a_bad_csv_file_is_named_with_its_row_and_the_fix(tmp_path, text, problem, fix):
    (tmp_path / "good.csv").write_text(GOOD)
    bad = tmp_path / "zz-bad.csv"
    bad.write_text(text)
    with pytest.raises(DataError, match=re.escape(str(bad)) + r"[ ,].*" + problem + ".*" + fix):
        load_files(str(tmp_path / "*.csv"), str(tmp_path / "good.csv"), str(tmp_path / "good.csv"), "label")


def test_bad_globs_targets_and_formats_get_a_clear_error(tmp_path):
    good = tmp_path / "good.csv"
    good.write_text(GOOD)
    g = str(good)
    with pytest.raises(DataError, match=r"the test files '\S+nothing-\*\.csv' match no file; check the path"):
        load_files(g, g, str(tmp_path / "nothing-*.csv"), "label")
    with pytest.raises(DataError, match=r"has no column 'y'; its columns are x0, x1, label\. Pass one of them"):
        load_files(g, g, g, "y")
    (tmp_path / "data.parquet").write_text("x")
    with pytest.raises(DataError, match=r"cannot tell the format of \S+data\.parquet .* file_format='csv'"):
        load_files(g, g, str(tmp_path / "data.parquet"), "label")
    (tmp_path / "fake.tfrecord").write_text(GOOD)
    with pytest.raises(DataError, match="the files mix CSV and TFRecord"):
        load_files(g, g, str(tmp_path / "fake.tfrecord"), "label")
    fake = str(tmp_path / "fake.tfrecord")
    with pytest.raises(DataError, match=re.escape(fake) + " is not a TFRecord file of tf.train.Example"):
        load_files(fake, fake, fake, "label")
    (tmp_path / "broken.csv.gz").write_bytes(b"not gzip at all")
    with pytest.raises(DataError, match=r"broken\.csv\.gz is not a readable CSV file .*gzipped when its name"):
        load_files(g, g, str(tmp_path / "broken.csv.gz"), "label")


def test_a_tfrecord_whose_features_differ_is_named(tmp_path):
    good = tmp_path / "good.csv"
    good.write_text(GOOD)
    write_tfrecord_shards(str(good), str(tmp_path / "a"), 2)
    with tf.io.TFRecordWriter(str(tmp_path / "a" / "z-odd.tfrecord")) as writer:
        writer.write(tf.train.Example(features=tf.train.Features(feature={
            "x0": tf.train.Feature(float_list=tf.train.FloatList(value=[1.0])),
            "label": tf.train.Feature(int64_list=tf.train.Int64List(value=[1])),
        })).SerializeToString())
    pattern = str(tmp_path / "a" / "*.tfrecord")
    differ = (r"z-odd\.tfrecord, record 1: feature 'label' is a int64_list here but a float_list in "
              r"\S+00000-of-00002\.tfrecord, record 1; every feature needs one type")
    with pytest.raises(DataError, match=differ):
        load_files(pattern, pattern, pattern, "label")
    with pytest.raises(DataError, match="has 20 data rows, too few for 30 shards"):
        write_tfrecord_shards(str(good), str(tmp_path / "b"), 30)
    assert list((tmp_path / "b").iterdir()) == []  # nothing half-written left behind


@pytest.mark.parametrize("out", ["afile", "afile/shards"])
def test_tfrecords_into_a_file_ends_in_one_line_naming_it(tmp_path, capsys, out):
    """`tfzoo tfrecords CSV --out AFILE` ended in a FailedPreconditionError traceback."""
    (tmp_path / "good.csv").write_text(GOOD)
    (tmp_path / "afile").write_text("mine")
    assert main(["tfrecords", str(tmp_path / "good.csv"), "--out", str(tmp_path / out)]) == 2
    error = capsys.readouterr().err
    assert error.count("\n") == 1 and f"cannot write the shards into {tmp_path / out}: " in error
    assert "pass --out a folder" in error and (tmp_path / "afile").read_text() == "mine"


# ----------------------------------------------------------------------------------------------- order, shards

def test_training_order_depends_on_seed_and_epoch_only(streamed, binary):
    size = streamed.num_examples("train")
    steps = steps_per_epoch(size, 64)

    def labels(epochs: range) -> list[np.ndarray]:
        batches = list(streamed.training_pipeline(64, seed=5, epochs=epochs))
        assert len(batches) == steps * len(epochs)  # batches never straddle epochs
        rows = np.concatenate([np.concatenate([matrix(x), y.numpy()], axis=1) for x, y in batches])
        return np.split(rows, len(epochs))

    whole = labels(range(0, 3))
    np.testing.assert_array_equal(whole[2], labels(range(2, 3))[0])  # epoch 2 as if never interrupted
    assert not np.array_equal(whole[0], whole[1])  # a new order each epoch
    expected = rows_of_arrays(*binary.arrays("train"))
    for epoch in whole:  # every epoch is every training row once
        np.testing.assert_array_equal(epoch[np.lexsort(epoch.T[::-1])], expected)
    other_seed = np.concatenate([matrix(x) for x, _ in streamed.training_pipeline(64, seed=6, epochs=range(0, 1))])
    assert not np.array_equal(other_seed, whole[0][:, :-1])


def worker_rows(data: FileDataset, monkeypatch, workers: int, batch_size: int) -> list[np.ndarray]:
    """The training rows of epoch 0 each of `workers` TF_CONFIG tasks reads."""
    addresses = [f"127.0.0.1:{port}" for port in range(20000, 20000 + workers)]
    rows = []
    for index in range(workers):
        config = {"cluster": {"worker": addresses}, "task": {"type": "worker", "index": index}}
        monkeypatch.setenv("TF_CONFIG", json.dumps(config))
        batches = data.training_pipeline(batch_size, seed=1, epochs=range(0, 1))
        rows.append(np.concatenate([matrix(x) for x, _ in batches]))
    return rows


@pytest.mark.slow
def test_multi_worker_training_is_sharded_by_file_with_equal_steps(streamed, monkeypatch):
    size = streamed.num_examples("train")
    shares = worker_rows(streamed, monkeypatch, 2, 64)
    per_worker = steps_per_epoch(size, 64) * 64 // 2
    assert [len(rows) for rows in shares] == [per_worker, per_worker]  # the same steps on both workers
    file_rows = []
    for path in streamed.files("train"):
        x, _ = next(iter(load_files(path, path, path, "label").pipeline("test", 10_000)))
        file_rows.append({row.tobytes() for row in matrix(x)})
    owners = [{i for i, rows in enumerate(file_rows) if any(r.tobytes() in rows for r in share)} for share in shares]
    assert len(owners[0]) == len(owners[1]) == 4 and not owners[0] & owners[1]  # 4 whole files each, disjoint
    # Three workers and a batch they cannot split evenly: sharded by data, every worker reads all of the data.
    by_data = worker_rows(streamed, monkeypatch, 3, 64)
    assert all(len(rows) == size for rows in by_data)
    np.testing.assert_array_equal(by_data[0], by_data[2])


# ------------------------------------------------------------------------------------------ training and export

@pytest.mark.slow
def test_binary_mlp_learns_from_csv_shards_and_evaluates(streamed, tmp_path):
    result = tfzoo.train("binary_mlp", dataset=streamed, epochs=4, batch_size=64, learning_rate=0.03,
                         run_dir=tmp_path / "run", verbose=0)
    assert result.metrics["accuracy"] >= 0.9, result.metrics
    config = json.loads((tmp_path / "run" / "config.json").read_text())
    assert config["dataset"]["name"] == "files" and config["dataset_fingerprint"] == streamed.fingerprint
    assert tfzoo.evaluate(tmp_path / "run", verbose=0) == pytest.approx(result.metrics, rel=1e-5)


@pytest.mark.slow
def test_cli_writes_tfrecord_shards_trains_on_them_and_refuses_incomplete_flags(binary, tmp_path, capsys):
    globs = {}
    for split in SPLITS:
        whole = tmp_path / f"{split}.csv"
        whole.write_text(csv_text(*binary.arrays(split)))
        assert main(["tfrecords", str(whole), "--out", str(tmp_path / split), "--shards", "4"]) == 0
        printed = capsys.readouterr().out.split()
        assert printed == sorted(str(path) for path in (tmp_path / split).glob("*.tfrecord")) and len(printed) == 4
        globs[split] = str(tmp_path / split / "*.tfrecord")
    flags = ["--train-files", globs["train"], "--validation-files", globs["validation"], "--target", "label"]
    assert main(["train", "binary_mlp", *flags]) == 2
    assert "streamed data needs all of --train-files GLOB --validation-files GLOB" in capsys.readouterr().err
    flags += ["--test-files", globs["test"]]
    assert main(["train", "binary_mlp", *flags, "--csv", str(tmp_path / "test.csv")]) == 2
    assert "--train-files cannot be combined with --csv" in capsys.readouterr().err
    run = tmp_path / "run"
    assert main(["train", "binary_mlp", *flags, "--epochs", "4", "--batch-size", "64", "-p", "learning_rate=0.03",
                 "--run-dir", str(run)]) == 0
    assert json.loads((run / "metrics.json").read_text())["accuracy"] >= 0.85
    assert json.loads((run / "config.json").read_text())["dataset"]["file_format"] == "tfrecord"
    capsys.readouterr()
    assert main(["evaluate", str(run)]) == 0
    assert json.loads(capsys.readouterr().out)["accuracy"] >= 0.85


@pytest.mark.slow
def test_two_workers_train_on_eight_csv_shards_and_export(streamed, csv_globs, tmp_path):
    run_dir, tmp_root = tmp_path / "run", tmp_path / "tmp"
    tmp_root.mkdir()
    job = subprocess.run(
        [sys.executable, str(LAUNCHER), "--workers", "2", "--", "binary_mlp", "--run-dir", str(run_dir),
         "--train-files", csv_globs["train"], "--validation-files", csv_globs["validation"],
         "--test-files", csv_globs["test"], "--target", "label", "--epochs", "4", "--batch-size", "64",
         "-p", "learning_rate=0.03"],
        capture_output=True, text=True, timeout=400, env={**os.environ, "TMPDIR": str(tmp_root)})
    output = job.stdout + job.stderr
    assert job.returncode == 0, output[-4000:]
    digests = re.findall(r"\[worker (\d)\] weights sha256: (\w+)", output)
    assert sorted(worker for worker, _ in digests) == ["0", "1"]
    assert digests[0][1] == digests[1][1]  # every worker ends with the same weights
    config = json.loads((run_dir / "config.json").read_text())
    assert config["strategy"] == "multi_worker" and config["num_replicas"] == 2
    assert config["dataset"]["name"] == "files"
    assert json.loads((run_dir / "metrics.json").read_text())["accuracy"] >= 0.85
    assert list(tmp_root.iterdir()) == []  # worker 1 wrote only to a temporary folder, and removed it
    version = Path(tfzoo.export(run_dir, tmp_path / "models"))  # validated in a fresh process before publishing
    requests = read_warmup(version / "assets.extra" / "tf_serving_warmup_requests")
    largest = max((inputs for signature, inputs in requests if signature == "serving_default"),
                  key=lambda inputs: len(inputs["x0"]))  # warm-up requests from the test files, one input per column
    np.testing.assert_array_equal(matrix(largest), matrix(streamed.first_features("test", len(largest["x0"]))))


# ------------------------------------------------------------------------------------------- tables as they come

MIXED_OPTIONS = {"categorical": ["code"], "drop": ["id"], "positive_class": "yes"}


def mixed_csv(path: Path, rows: int = 240) -> Path:
    """A table as it comes: numbers with gaps (values float32 holds exactly; a gap is an empty field or 'NA'), a text
    category with gaps, booleans with gaps, a numeric code declared categorical, an ID column to drop and string
    labels that follow the rows."""
    rng = np.random.default_rng(7)
    age = rng.integers(18, 80, rows)
    income = rng.integers(0, 400, rows) / 4
    city = rng.choice(["paris", "rome", "oslo"], rows)
    member = rng.choice(["True", "False"], rows)
    lines = ["id,age,income,city,member,code,label"]
    for i in range(rows):
        label = "yes" if (age[i] > 45) != (city[i] == "oslo") else "no"
        gap = "NA" if i % 2 else ""  # pandas' missing-value texts, not only empty fields
        lines.append(",".join([f"u{i}", "" if i % 9 == 4 else str(age[i]), gap if i % 11 == 6 else str(income[i]),
                               "" if i % 13 == 8 else city[i], "" if i % 17 == 10 else member[i], str(i % 5),
                               label]))
    path.write_text("\n".join(lines) + "\n")
    return path


def rounded(value):
    """A schema's JSON with its floats to 10 significant digits: streamed moments are merged chunk by chunk."""
    if isinstance(value, float):
        return float(f"{value:.10g}")
    if isinstance(value, dict):
        return {key: rounded(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [rounded(item) for item in value]
    return value


@pytest.fixture(scope="module")
def mixed(tmp_path_factory):
    """load_csv on a mixed table, and the same rows as streamed files: its train split in 3 CSV shards, its
    validation and test splits in one file each (the rows load_csv put there, in its order)."""
    folder = tmp_path_factory.mktemp("mixed")
    path = mixed_csv(folder / "table.csv")
    in_memory = load_csv(path, "label", **MIXED_OPTIONS)
    header, *lines = path.read_text().splitlines()
    indices = split_indices(len(lines), seed=0, validation_fraction=0.15, test_fraction=0.15)
    parts = {"train": np.array_split(indices[0], 3), "validation": [indices[1]], "test": [indices[2]]}
    for split, shards in parts.items():
        for number, rows in enumerate(shards):
            (folder / f"{split}-{number}.csv").write_text("\n".join([header, *(lines[i] for i in rows)]) + "\n")
    globs = {split: str(folder / f"{split}-*.csv") for split in SPLITS}
    return in_memory, globs


def test_a_mixed_table_streams_with_the_schema_and_inputs_of_load_csv(mixed):
    in_memory, globs = mixed
    streamed = load_files(globs["train"], globs["validation"], globs["test"], "label", **MIXED_OPTIONS)
    schema = streamed.schema
    assert {c.name: c.kind for c in schema.columns} == {"age": "numeric", "income": "numeric", "city": "categorical",
                                                       "member": "categorical", "code": "categorical"}
    assert (schema.task, schema.classes, schema.dropped) == ("binary", ("no", "yes"), ("id",))
    assert rounded(schema.to_json()) == rounded(in_memory.schema.to_json())  # the same statistics, same rows
    assert (streamed.task, streamed.input_shape, streamed.feature_names) == (
        in_memory.task, in_memory.input_shape, in_memory.feature_names)
    for split in SPLITS:  # an empty field is a missing value: NaN, or '' for a category, as in memory
        features, labels = next(iter(streamed.pipeline(split, 1000)))
        x, y = in_memory.arrays(split)
        assert set(features) == set(x)
        for key, column in features.items():
            values = column.numpy()
            np.testing.assert_array_equal(values.astype(object) if values.dtype == object else values,
                                          np.array([v.encode() for v in x[key]], dtype=object)
                                          if x[key].dtype == object else x[key])
        np.testing.assert_array_equal(labels.numpy(), y)
    assert streamed.first_features("test", 3)["city"].tolist() == in_memory.x_test["city"][:3].tolist()
    source = json.loads(json.dumps(streamed.source))
    assert (source["categorical"], source["drop"], source["positive_class"]) == (["code"], ["id"], "yes")
    assert load_dataset(**source).fingerprint == streamed.fingerprint
    assert load_files(globs["train"], globs["validation"], globs["test"], "label", drop=["id"]).fingerprint != (
        streamed.fingerprint)  # another schema (code numeric, 'no' positive) is other data


@pytest.fixture(scope="module")
def mixed_tfrecords(mixed, tmp_path_factory):
    """The mixed table's splits as TFRecord shards written by write_tfrecord_shards."""
    _, globs = mixed
    folder = tmp_path_factory.mktemp("mixed-tfrecord")
    records = {}
    for split in SPLITS:
        paths = sorted(Path(p) for p in tf.io.gfile.glob(globs[split]))
        whole = folder / f"{split}.csv"
        whole.write_text(paths[0].read_text() + "".join(p.read_text().split("\n", 1)[1] for p in paths[1:]))
        write_tfrecord_shards(str(whole), str(folder / split), 2)
        records[split] = str(folder / split / "*.tfrecord")
    return records


def test_tfrecord_shards_of_the_table_give_the_same_schema(mixed, mixed_tfrecords):
    in_memory, _ = mixed
    example = tf.train.Example.FromString(next(iter(tf.data.TFRecordDataset(
        tf.io.gfile.glob(mixed_tfrecords["train"])[0]))).numpy())
    kinds = {key: feature.WhichOneof("kind") for key, feature in example.features.feature.items()}
    assert {kinds[k] for k in ("age", "income", "code")} == {"float_list"}
    assert {kinds[k] for k in ("id", "city", "member", "label")} == {"bytes_list"}
    streamed = load_files(mixed_tfrecords["train"], mixed_tfrecords["validation"], mixed_tfrecords["test"], "label",
                          **MIXED_OPTIONS)
    # The same schema, its columns in sorted name order (an Example's features have no order).
    by_name = sorted(in_memory.schema.columns, key=lambda column: column.name)
    assert rounded(streamed.schema.to_json()) == rounded(replace(in_memory.schema, columns=tuple(by_name)).to_json())
    features, labels = next(iter(streamed.pipeline("test", 1000)))
    assert sorted(features["code"].numpy().tolist()) == sorted(v.encode() for v in in_memory.x_test["code"])
    np.testing.assert_array_equal(np.sort(labels.numpy().ravel()), np.sort(in_memory.y_test.ravel()))


@pytest.mark.slow
def test_a_model_trains_on_streamed_tfrecords_of_a_table_and_takes_raw_columns(mixed_tfrecords, tmp_path):
    data = choose_dataset(task="binary", target="label", train_files=mixed_tfrecords["train"],
                          validation_files=mixed_tfrecords["validation"], test_files=mixed_tfrecords["test"],
                          **MIXED_OPTIONS)
    assert isinstance(data, FileDataset) and data.schema.positive_class == "yes"
    result = tfzoo.train("binary_mlp", dataset=data, epochs=2, batch_size=32, run_dir=tmp_path / "run", verbose=0)
    assert np.isfinite(result.metrics["loss"])
    model = keras.saving.load_model(tmp_path / "run" / "model.keras")
    raw = {"age": np.array([30.0, np.nan], np.float32), "income": np.array([12.5, 80.0], np.float32),
           "city": np.array(["oslo", ""], object), "member": np.array(["True", "False"], object),
           "code": np.array(["3", "9"], object)}  # a gap, an unseen code: as served
    probabilities = model.predict(raw, verbose=0)
    assert probabilities.shape == (2, 1) and np.all((probabilities >= 0) & (probabilities <= 1))


def test_the_table_flags_are_refused_for_a_text_model(mixed):
    _, globs = mixed
    with pytest.raises(DataError, match="--categorical, --drop and --positive-class describe the columns of a table"):
        choose_dataset(task="language_model", target="label", train_files=globs["train"],
                       validation_files=globs["validation"], test_files=globs["test"], drop=["id"])


def test_every_problem_of_a_set_of_files_is_reported_at_once(tmp_path):
    header = "name,size,code,label\n"
    rows = [f"person {i},{'?' if i % 12 == 0 else i},{i % 3},same\n" for i in range(60)]
    for number, part in enumerate((rows[:30], rows[30:50], rows[50:])):
        (tmp_path / f"part-{number}.csv").write_text(header + "".join(part))
    with pytest.raises(DataError) as error:
        load_files(str(tmp_path / "part-0.csv"), str(tmp_path / "part-1.csv"), str(tmp_path / "part-2.csv"), "label")
    message = str(error.value)
    assert message.startswith("the files ") and "cannot be trained on as it is" in message
    assert "column 'name' looks like an identifier or a name (60 distinct values in 60 rows)" in message
    assert "--drop name" in message
    assert "column 'size' holds numbers but also '?' in 5 rows" in message  # '?' in every file counted
    assert "target 'label' holds one value ('same'); a classifier needs at least two classes" in message


def test_the_median_and_moments_come_from_the_training_files_only(tmp_path):
    (tmp_path / "train.csv").write_text("x,label\n1,0\n2,1\n3,0\n,1\n5,0\n9,1\n")
    for name in ("validation", "test"):
        (tmp_path / f"{name}.csv").write_text("x,label\n" + "".join(f"{v},{v % 2}\n" for v in range(1000, 1040)))
    data = load_files(*(str(tmp_path / f"{name}.csv") for name in SPLITS), "label")
    (column,) = data.schema.columns
    imputed = np.array([1, 2, 3, 3, 5, 9], np.float64)  # the gap takes the training median, 3
    assert (column.median, column.missing) == (3.0, True)
    assert column.mean == pytest.approx(imputed.mean()) and column.variance == pytest.approx(imputed.var())


def test_a_streamed_median_beyond_the_sample_comes_from_a_fixed_sample(monkeypatch):
    monkeypatch.setattr(schema_module, "MEDIAN_SAMPLE", 500)
    values = np.random.default_rng(3).permutation(np.arange(20_000, dtype=np.float64))
    medians = []
    for _ in range(2):
        accumulator = schema_module.ProfileAccumulator(statistics=True)
        for chunk in np.array_split(values, 37):
            accumulator.add(chunk)
        profile = accumulator.profile()
        medians.append(profile.median)
        assert profile.mean == pytest.approx(values.mean()) and profile.variance == pytest.approx(values.var())
    assert medians[0] == medians[1]  # the same values in the same chunks: the same sample
    assert abs(medians[0] - np.median(values)) < 0.1 * len(values)  # a uniform sample's median


def test_a_column_is_typed_whole_across_the_files_as_pandas_types_it(tmp_path):
    # Numbers in the training file, text in the others: a column of text, whose training values keep their text.
    (tmp_path / "train.csv").write_text("grade,x,label\n" + "".join(f"{g},{i},{i % 2}\n"
                                                                  for i, g in enumerate(["1.0", "2.0"] * 10)))
    for name in ("validation", "test"):
        (tmp_path / f"{name}.csv").write_text("grade,x,label\n" + "".join(f"{g},{i},{i % 2}\n"
                                                                         for i, g in enumerate("ab" * 10)))
    data = load_files(*(str(tmp_path / f"{name}.csv") for name in SPLITS), "label")
    grade = data.schema.column("grade")
    assert (grade.kind, grade.vocabulary) == ("categorical", ("", "1.0", "2.0"))
    features, _ = next(iter(data.pipeline("train", 4)))
    assert features["grade"].numpy().tolist() == [b"1.0", b"2.0", b"1.0", b"2.0"]
