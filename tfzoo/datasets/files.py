"""Datasets that stream from CSV (optionally gzipped) or TFRecord files of tf.train.Example through tf.data.

Nothing holds a whole table: loading makes one streaming pass over every file (row counts for steps per epoch,
label checks, the fingerprint) and the pipelines read the files again, a block at a time. Every path goes
through tf.io.gfile and tf.data, so gs:// and the other TensorFlow file systems work as local paths do.

Files: one glob per split. A CSV has a header line; column `target` is the label, every other column a numeric
feature, in header order. A TFRecord holds tf.train.Example records; feature `target` (one float or int) is the
label, every other feature (float_list or int64_list of fixed length) goes into the input, in sorted name order.
`.gz` names are read as gzip. Every file is checked against the first training file on its first records (the
same columns, input width and types); a bad file raises a DataError naming the file, the row where known, and
the fix.

Task: `task` when given (the CLI passes the model's task), else inferred from the target values the counting
pass sees, as distinct values up to MAX_TRACKED_LABELS: only 0 and 1 make 'binary'; whole numbers >= 0 with at
most MAX_INFERRED_CLASSES distinct values make 'multiclass' (num_classes = largest + 1, as `load_csv` counts);
anything else 'regression'. Pass `task` to override the guess (e.g. counts that are a regression target).

Multi-worker (TF_CONFIG with several chief/worker tasks): training is sharded by FILE when there are at least as
many training files as workers and the global batch splits evenly over them: each epoch the files are shuffled
with a stateless (seed, epoch) seed and dealt out, worker i reading files i, i + W, ...; every worker then reads
exactly steps_per_epoch * batch_size / W examples of its files per epoch (cycling through them again, or stopping
early, when its files hold fewer or more), so every worker takes the same number of steps. Otherwise training is
sharded by DATA: every worker reads every file in the same order and keeps its share of each global batch.
Validation and test are always sharded by DATA, so every worker sees the same number of batches.

Order: each epoch shuffles the file order with the stateless seed (seed, epoch) and permutes blocks of
`shuffle_buffer` examples with seeds folded from it, so an epoch's order depends on (seed, epoch) alone and
memory stays bounded by the block, whatever the file size.
"""
from __future__ import annotations

import csv
import gzip
import hashlib
import io
import json
import math
import os
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np
import tensorflow as tf

from tfzoo.cluster import cluster_from_tf_config
from tfzoo.datasets.base import SPLITS, DataError, Dataset, distributable, steps_per_epoch
from tfzoo.tasks import get_task

FORMATS = ("auto", "csv", "tfrecord")
TFRECORD_SUFFIXES = (".tfrecord", ".tfrecords", ".tfrec")
SCHEMA_ROWS = 5  # records of every file checked against the first file before any training starts
COUNT_CHUNK = 8192  # records parsed at a time by the counting pass
PARALLEL_FILES = 4  # files read at once (interleaved) by the pipelines
READ_CHUNK = 1024  # records a pipeline reads from one file before turning to the next
MAX_TRACKED_LABELS = 1001  # distinct target values remembered while counting
MAX_INFERRED_CLASSES = 100  # more distinct whole numbers than this are taken for a regression target


@dataclass(frozen=True)
class _Schema:
    """How to turn a file's records into (features [N, D] float32, raw target [N] float32)."""

    file_format: str
    columns: tuple[str, ...]  # CSV: the header; TFRecord: the feature keys, sorted
    target: str
    lengths: tuple[int, ...] = ()  # TFRecord: values per key, in `columns` order
    kinds: tuple[str, ...] = ()  # TFRecord: 'float_list' or 'int64_list' per key

    @property
    def feature_names(self) -> tuple[str, ...]:
        if self.file_format == "csv":
            return tuple(c for c in self.columns if c != self.target)
        return tuple(name if length == 1 else f"{name}[{i}]"
                     for name, length in zip(self.columns, self.lengths) if name != self.target
                     for i in range(length))

    def records(self, path: tf.Tensor, compression: tf.Tensor) -> tf.data.Dataset:
        """One file's raw records (CSV lines after the header, or serialized Examples)."""
        if self.file_format == "csv":
            return tf.data.TextLineDataset(path, compression_type=compression, buffer_size=1 << 20).skip(1)
        return tf.data.TFRecordDataset(path, compression_type=compression, buffer_size=1 << 20)

    def parse(self, records: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
        """A batch of raw records as (features [N, D] float32, target [N] float32)."""
        if self.file_format == "csv":
            # Type-only defaults make every field required: an empty field is an error, not a silent 0.
            fields = tf.io.decode_csv(records, [tf.constant([], tf.float32)] * len(self.columns))
            named = dict(zip(self.columns, fields))
            features = tf.stack([named[name] for name in self.feature_names], axis=1)
            return features, named[self.target]
        spec = {name: tf.io.FixedLenFeature([length], tf.float32 if kind == "float_list" else tf.int64)
                for name, length, kind in zip(self.columns, self.lengths, self.kinds)}
        parsed = {name: tf.cast(value, tf.float32) for name, value in tf.io.parse_example(records, spec).items()}
        features = tf.concat([parsed[name] for name in self.columns if name != self.target], axis=1)
        return features, parsed[self.target][:, 0]


@dataclass(frozen=True)
class _FileStats:
    """What the counting pass learns about one file."""

    rows: int
    digest: str
    labels: frozenset[float]  # distinct target values, up to MAX_TRACKED_LABELS
    odd_label: float | None  # a target value that is not a whole number >= 0, if there is one


class FileDataset(Dataset):
    """Train / validation / test streamed from files; see the module docstring for formats, order and sharding."""

    def __init__(self, *, task: str, source: dict[str, Any], schema: _Schema, files: dict[str, tuple[str, ...]],
                 rows: dict[str, int], num_classes: int | None, fingerprint: str, shuffle_buffer: int) -> None:
        self.name = "files"
        self.task = task
        self.source = source
        self.num_classes = num_classes
        self.feature_names = schema.feature_names
        self.description = ", ".join(f"{split}: {len(files[split])} {schema.file_format} files, {rows[split]} rows"
                                     for split in SPLITS) + f"; target {schema.target!r}"
        self._schema = schema
        self._files = files
        self._rows = rows
        self._fingerprint = fingerprint
        self._shuffle_buffer = shuffle_buffer

    @property
    def input_shape(self) -> tuple[int, ...]:
        return (len(self.feature_names),)

    @property
    def fingerprint(self) -> str:
        """SHA-256 over the schema and, per file in order: name, size, row count and a SHA-256 of its parsed values
        (computed by the counting pass, so the files are not read a second time for it)."""
        return self._fingerprint

    def num_examples(self, split: str) -> int:
        return self._rows[_split(split)]

    def first_features(self, split: str, count: int) -> np.ndarray:
        features, _ = next(iter(self.pipeline(split, count)))
        return features.numpy()

    def files(self, split: str) -> tuple[str, ...]:
        """The files of one split, sorted, as the globs matched them."""
        return self._files[_split(split)]

    def pipeline(self, split: str, batch_size: int, *, shuffle: bool = False, seed: int = 0) -> tf.data.Dataset:
        """One split in file order, batched by the global `batch_size`; `shuffle` adds a bounded shuffle buffer
        seeded with `seed` (a new order each time it is iterated). Sharded by data under a multi-worker strategy."""
        files = self._files[_split(split)]
        blocks = self._blocks(files, tf.range(len(files)), cycle=min(PARALLEL_FILES, len(files)))
        if shuffle:
            batches = blocks.unbatch().shuffle(self._shuffle_buffer, seed=seed, reshuffle_each_iteration=True)
            batches = batches.batch(batch_size)
        else:
            batches = blocks.rebatch(batch_size)  # unbatch().batch() in one copy
        # A known length, as in-memory pipelines have: Keras then never takes the end of the data for a shortfall.
        batches = batches.apply(tf.data.experimental.assert_cardinality(math.ceil(self._rows[split] / batch_size)))
        return distributable(batches)

    def training_pipeline(self, batch_size: int, *, seed: int, epochs: range) -> tf.data.Dataset:
        """The training batches of `epochs` back to back; an epoch's order depends on (seed, epoch) alone, and
        under a multi-worker strategy each worker reads only its files when there are enough of them."""
        files = self._files["train"]
        workers, index = _worker_share(len(files), batch_size)
        steps = steps_per_epoch(self._rows["train"], batch_size)

        def epoch_batches(epoch: tf.Tensor) -> tf.data.Dataset:
            epoch_seed = tf.stack([tf.constant(seed, tf.int64), epoch])
            order = tf.random.experimental.stateless_shuffle(tf.range(len(files)), seed=epoch_seed)[index::workers]
            blocks = self._blocks(files, order, cycle=min(PARALLEL_FILES, math.ceil(len(files) / workers)),
                                  seed=epoch_seed)
            if workers > 1:  # the same number of examples, hence steps, on every worker
                blocks = blocks.repeat().rebatch(batch_size // workers).take(steps)
            return blocks.rebatch(batch_size)  # unbatch().batch() in one copy

        # A parallel interleave of one epoch at a time is flat_map that starts reading the next epoch early.
        batches = tf.data.Dataset.range(epochs.start, epochs.stop).interleave(
            epoch_batches, cycle_length=1, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
        policy = tf.data.experimental.AutoShardPolicy
        return distributable(batches, policy.OFF if workers > 1 else policy.DATA)

    def _blocks(self, files: tuple[str, ...], order: tf.Tensor, *, cycle: int,
                seed: tf.Tensor | None = None) -> tf.data.Dataset:
        """(features, labels) blocks from files[order], interleaved `cycle` files at a time, READ_CHUNK records
        from each in turn. With a seed, blocks of `shuffle_buffer` examples, each permuted by a seed folded from
        `seed` and the block's index."""
        names = tf.gather(tf.constant(files), order)
        compressions = tf.gather(tf.constant([_compression(path) for path in files]), order)
        # Chunks, not single records, cross the interleave and the parse: tf.data's cost is per element.
        chunks = tf.data.Dataset.from_tensor_slices((names, compressions)).interleave(
            lambda name, compression: self._schema.records(name, compression).batch(READ_CHUNK),
            cycle_length=max(cycle, 1), num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
        blocks = chunks.map(lambda chunk: self._labelled(*self._schema.parse(chunk)),
                            num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
        if seed is None:
            return blocks

        def permute(block_index: tf.Tensor, block: tuple[tf.Tensor, tf.Tensor]) -> tuple[tf.Tensor, tf.Tensor]:
            block_seed = tf.random.experimental.stateless_fold_in(seed, block_index)
            order = tf.random.experimental.stateless_shuffle(tf.range(tf.shape(block[0])[0]), seed=block_seed)
            return tf.gather(block[0], order), tf.gather(block[1], order)

        return blocks.rebatch(self._shuffle_buffer).enumerate().map(permute, num_parallel_calls=tf.data.AUTOTUNE)

    def _labelled(self, features: tf.Tensor, target: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
        """Labels in the dtype and shape DataSplits uses: int64 [N] for multiclass, else float32 [N, 1]."""
        return features, get_task(self.task).label_tensor(target)


def load_files(
    train: str,
    validation: str,
    test: str,
    target: str,
    *,
    task: str | None = None,
    file_format: str = "auto",
    shuffle_buffer: int = 10_000,
    seed: int = 0,
) -> FileDataset:
    """A dataset streamed from the files each glob matches (one glob per split); see the module docstring.

    file_format is 'csv', 'tfrecord' or 'auto' (from the names: .csv[.gz], .tfrecord[s][.gz], .tfrec[.gz]).
    task is 'regression', 'binary' or 'multiclass', or None to infer it from the target values. `seed` is kept
    in `source` for load_dataset; the training order takes the trainer's seed. Reads every file once.
    """
    if task is not None:
        try:
            get_task(task)
        except ValueError as error:
            raise DataError(str(error)) from None
    if file_format not in FORMATS:
        raise DataError(f"file_format must be one of {', '.join(FORMATS)}, got {file_format!r}")
    if isinstance(shuffle_buffer, bool) or not isinstance(shuffle_buffer, int) or shuffle_buffer < 1:
        raise DataError(f"shuffle_buffer must be a positive number of examples, got {shuffle_buffer!r}")
    files = {split: _glob(split, pattern) for split, pattern in zip(SPLITS, (train, validation, test))}
    every_file = [path for split in SPLITS for path in files[split]]
    formats = {path: _format_of(path, file_format) for path in every_file}
    if len(set(formats.values())) > 1:
        raise DataError("the files mix CSV and TFRecord (" + ", ".join(f"{p}: {f}" for p, f in formats.items())
                        + "); convert them to one format (write_tfrecord_shards makes TFRecords from a CSV)")
    first = files["train"][0]
    schema = _read_schema(first, formats[first], target)
    for path in every_file:
        _check_first_records(path, schema, first)
    stats = {path: _count(path, schema) for path in every_file}
    task, num_classes = _task(task, target, stats)
    rows = {split: sum(stats[path].rows for path in files[split]) for split in SPLITS}
    digest = hashlib.sha256(json.dumps([schema.file_format, schema.columns, schema.lengths, schema.kinds,
                                        schema.target, task]).encode())
    for split in SPLITS:
        for path in files[split]:
            digest.update(json.dumps([split, path.rsplit("/", 1)[-1], tf.io.gfile.stat(path).length,
                                      stats[path].rows, stats[path].digest]).encode())
    source = {"name": "files", "seed": seed, "train": train, "validation": validation, "test": test,
              "target": target, "task": task, "file_format": schema.file_format, "shuffle_buffer": shuffle_buffer}
    return FileDataset(task=task, source=source, schema=schema, files=files, rows=rows, num_classes=num_classes,
                       fingerprint=digest.hexdigest(), shuffle_buffer=shuffle_buffer)


def _split(split: str) -> str:
    if split not in SPLITS:
        raise ValueError(f"split must be one of {SPLITS}, got {split!r}")
    return split


def _worker_share(num_files: int, batch_size: int) -> tuple[int, int]:
    """(workers, this worker's index) when training is sharded by file, (1, 0) when by data (or not distributed).

    The index follows MultiWorkerMirroredStrategy's numbering: the chief first, then the workers in order."""
    if "TF_CONFIG" not in os.environ:
        return 1, 0
    cluster = cluster_from_tf_config()
    workers = cluster.num_tasks
    if workers < 2 or num_files < workers or batch_size % workers:
        return 1, 0
    behind_chief = "chief" in cluster.jobs and cluster.task_type == "worker"
    return workers, cluster.task_index + behind_chief


def _glob(split: str, pattern: str) -> tuple[str, ...]:
    if not isinstance(pattern, str) or not pattern:
        raise DataError(f"the {split} files must be given as a glob such as 'data/{split}-*.csv', got {pattern!r}")
    try:
        matched = tf.io.gfile.glob(pattern)
    except tf.errors.OpError as error:
        raise DataError(f"cannot list the {split} files {pattern!r} ({error.message}); check the path") from None
    if not matched:
        raise DataError(f"the {split} files {pattern!r} match no file; check the path and the pattern "
                        "(gs:// and other TensorFlow file systems work too)")
    return tuple(sorted(matched))


def _compression(path: str) -> str:
    return "GZIP" if path.endswith(".gz") else ""


def _format_of(path: str, file_format: str) -> str:
    if file_format != "auto":
        return file_format
    name = path[: -len(".gz")] if path.endswith(".gz") else path
    if name.endswith(".csv"):
        return "csv"
    if name.endswith(TFRECORD_SUFFIXES):
        return "tfrecord"
    raise DataError(f"cannot tell the format of {path} from its name; name it .csv or .tfrecord (optionally .gz), "
                    "or pass file_format='csv' or 'tfrecord'")


def _open_text(path: str) -> Any:
    """A text stream over a (gzipped) file through tf.io.gfile."""
    if path.endswith(".gz"):
        return io.TextIOWrapper(gzip.GzipFile(fileobj=tf.io.gfile.GFile(path, "rb")), encoding="utf-8", newline="")
    return tf.io.gfile.GFile(path, "r")  # decodes UTF-8 itself


def _csv_rows(path: str) -> Iterator[list[str]]:
    """The rows of a CSV file (header first), streamed; unreadable files raise a DataError naming them."""
    try:
        with _open_text(path) as text:
            yield from csv.reader(text)
    except (OSError, EOFError, UnicodeDecodeError, csv.Error, tf.errors.OpError) as error:
        raise DataError(f"{path} is not a readable CSV file ({error}); save it as comma-separated UTF-8 "
                        "(gzipped when its name ends in .gz)") from None


def _first_examples(path: str) -> list[tf.train.Example]:
    try:
        records = list(tf.data.TFRecordDataset(path, _compression(path)).take(SCHEMA_ROWS).as_numpy_iterator())
        return [tf.train.Example.FromString(record) for record in records]
    except Exception as error:  # a DataLossError, a DecodeError: whatever it is, the file is not what we read
        raise DataError(f"{path} is not a TFRecord file of tf.train.Example ({str(error).splitlines()[0]}); "
                        "write it with tf.io.TFRecordWriter (or write_tfrecord_shards)") from None


def _read_schema(path: str, file_format: str, target: str) -> _Schema:
    """The schema of the first training file, which every other file must match."""
    if file_format == "csv":
        header = next(_csv_rows(path), None)
        if not header:
            raise DataError(f"{path} is empty; a CSV needs a header line and data rows")
        if len(set(header)) != len(header):
            raise DataError(f"{path} repeats a column name in its header {header}; give every column its own name")
        schema = _Schema("csv", tuple(header), target)
    else:
        examples = _first_examples(path)
        if not examples:
            raise DataError(f"{path} holds no records; write at least one tf.train.Example to it")
        features = examples[0].features.feature
        keys = tuple(sorted(features))
        kinds = tuple(features[key].WhichOneof("kind") or "float_list" for key in keys)
        lengths = tuple(len(getattr(features[key], kind).value) for key, kind in zip(keys, kinds))
        schema = _Schema("tfrecord", keys, target, lengths, kinds)
        bytes_keys = [key for key, kind in zip(keys, kinds) if kind == "bytes_list"]
        if bytes_keys:
            raise DataError(f"{path}: feature(s) {', '.join(bytes_keys)} hold bytes, not numbers; store numeric "
                            "features as float_list or int64_list")
        if target in keys and schema.lengths[keys.index(target)] != 1:
            raise DataError(f"{path}: target {target!r} holds {schema.lengths[keys.index(target)]} values per "
                            "example; it must hold one")
    if target not in schema.columns:
        raise DataError(f"{path} has no column {target!r}; its columns are {', '.join(schema.columns)}. "
                        "Pass one of them as the target (--target COLUMN)")
    if not schema.feature_names:
        raise DataError(f"{path} has only the target column {target!r}; add at least one feature column")
    return schema


def _bad_csv_row(row: list[str], columns: tuple[str, ...]) -> str | None:
    """What is wrong with one CSV data row, or None."""
    if len(row) != len(columns):
        return f"has {len(row)} fields, the header {len(columns)}"
    for column, value in zip(columns, row):
        try:
            number = float(value)
        except ValueError:
            return f"column {column!r} holds {value!r}, not a number"
        if not math.isfinite(number):
            return f"column {column!r} holds {value!r}, a missing or infinite value"
    return None


CSV_FIX = "every value must be a finite number: encode categories as numbers and fill or drop missing values"


def _check_first_records(path: str, schema: _Schema, first: str) -> None:
    """The file's first records have the columns, width and types of `first` (the first training file)."""
    if schema.file_format == "csv":
        rows = _csv_rows(path)
        header = next(rows, None)
        if not header:
            raise DataError(f"{path} is empty; a CSV needs a header line and data rows")
        if tuple(header) != schema.columns:
            raise DataError(f"{path} has the columns {', '.join(header)}, but {first} has "
                            f"{', '.join(schema.columns)}; every file needs the same header")
        count = 0
        for count, row in enumerate(rows, start=1):
            problem = _bad_csv_row(row, schema.columns)
            if problem:
                raise DataError(f"{path}, line {count + 1}: the row {problem}; {CSV_FIX}")
            if count == SCHEMA_ROWS:
                break
        if count == 0:
            raise DataError(f"{path} has a header but no data rows; add rows or leave the file out of the glob")
        return
    examples = _first_examples(path)
    if not examples:
        raise DataError(f"{path} holds no records; write at least one tf.train.Example to it or leave it out")
    for number, example in enumerate(examples, start=1):
        found = example.features.feature
        layout = {key: (found[key].WhichOneof("kind"), len(getattr(found[key], found[key].WhichOneof("kind")).value)
                        if found[key].WhichOneof("kind") else 0) for key in found}
        expected = {key: (kind, length) for key, kind, length in zip(schema.columns, schema.kinds, schema.lengths)}
        if layout != expected:
            differences = sorted(f"{key}: {layout.get(key, 'missing')} here, {expected.get(key, 'absent')} in first"
                                 for key in set(layout) | set(expected) if layout.get(key) != expected.get(key))
            raise DataError(f"{path}, record {number}: features differ from {first} ({'; '.join(differences)}); "
                            "every record needs the same features, types and lengths")


def _count(path: str, schema: _Schema) -> _FileStats:
    """One streaming pass over a file: its rows, a digest of its parsed values, and what its targets look like."""
    dataset = schema.records(tf.constant(path), tf.constant(_compression(path))).batch(COUNT_CHUNK)
    dataset = dataset.map(schema.parse)
    digest = hashlib.sha256()
    rows, labels, odd_label = 0, set(), None
    iterator = iter(dataset)
    while True:
        try:
            features, target = (value.numpy() for value in next(iterator))
        except StopIteration:
            break
        except tf.errors.OpError as error:
            raise _locate(path, schema, rows, error) from None
        finite = np.isfinite(features).all(axis=1) & np.isfinite(target)
        if not finite.all():
            row = rows + int(np.argmin(finite)) + 1
            where = f"line {row + 1}" if schema.file_format == "csv" else f"record {row}"
            raise DataError(f"{path}, {where}: a missing (NaN) or infinite value; {CSV_FIX}")
        digest.update(features.tobytes())
        digest.update(target.tobytes())
        rows += len(target)
        odd = (target != np.round(target)) | (target < 0)
        if odd_label is None and odd.any():
            odd_label = float(target[np.argmax(odd)])
        if len(labels) < MAX_TRACKED_LABELS:
            labels.update(np.unique(target).tolist())
    if rows == 0:
        raise DataError(f"{path} has no data rows; add rows or leave the file out of the glob")
    return _FileStats(rows, digest.hexdigest(), frozenset(labels), odd_label)


def _locate(path: str, schema: _Schema, offset: int, error: tf.errors.OpError) -> DataError:
    """A DataError for a chunk that failed to parse, naming the first bad row after `offset` where it can."""
    message = error.message.splitlines()[0] if error.message else type(error).__name__
    if schema.file_format == "csv":
        rows = _csv_rows(path)
        next(rows, None)
        for number, row in enumerate(rows, start=1):
            if number > offset and (problem := _bad_csv_row(row, schema.columns)):
                return DataError(f"{path}, line {number + 1}: the row {problem}; {CSV_FIX}")
            if number > offset + COUNT_CHUNK:
                break
    return DataError(f"{path}: cannot read the records after row {offset} ({message}); "
                     "fix or rewrite the file (every record needs the features of the first file, as numbers)")


def _task(task: str | None, target: str, stats: dict[str, _FileStats]) -> tuple[str, int | None]:
    """The task (given, or inferred by the module docstring's rule) and class count; the task checks the labels of
    every file (the distinct values seen, and a value that is not a class id if one was seen)."""
    labels = set().union(*(s.labels for s in stats.values()))
    if task is None:
        if labels <= {0.0, 1.0}:
            task = "binary"
        elif all(s.odd_label is None for s in stats.values()) and len(labels) <= MAX_INFERRED_CLASSES:
            task = "multiclass"
        else:
            task = "regression"
    check = get_task(task).labels
    try:
        for path, file_stats in stats.items():
            try:
                check(_seen_labels(file_stats), target)
            except ValueError as error:
                raise DataError(f"{path}: {error}") from None
        _, num_classes = check(np.array(sorted(labels)), target)
    except ValueError as error:  # a task that reads no labels from a column
        raise DataError(f"{error}; streamed files hold regression, binary or multiclass labels") from None
    return task, num_classes


def _seen_labels(stats: _FileStats) -> np.ndarray:
    """The label values one file was seen to hold, for the task's check."""
    return np.array(sorted(stats.labels | ({stats.odd_label} if stats.odd_label is not None else set())))


def write_tfrecord_shards(csv_path: str, out_dir: str, num_shards: int) -> list[str]:
    """Write a CSV (optionally .gz) as `num_shards` TFRecord files of tf.train.Example, one float feature per column.

    Rows are dealt round-robin, so shards differ in size by at most one row. The file is streamed, never held;
    each shard is written under a hidden temporary name and renamed into place when every shard is complete, so a
    glob for the shards never matches a half-written one. Returns the shard paths.
    """
    if isinstance(num_shards, bool) or not isinstance(num_shards, int) or num_shards < 1:
        raise DataError(f"num_shards must be a positive integer, got {num_shards!r}")
    rows = _csv_rows(csv_path)
    header = next(rows, None)
    if not header:
        raise DataError(f"{csv_path} is empty; a CSV needs a header line and data rows")
    stem = csv_path.rsplit("/", 1)[-1].removesuffix(".gz").removesuffix(".csv")
    tf.io.gfile.makedirs(out_dir)
    finals = [f"{out_dir.rstrip('/')}/{stem}-{i:05d}-of-{num_shards:05d}.tfrecord" for i in range(num_shards)]
    temporaries = [f"{out_dir.rstrip('/')}/.{stem}-{i:05d}.tmp-{uuid.uuid4().hex}" for i in range(num_shards)]
    writers = [tf.io.TFRecordWriter(path) for path in temporaries]
    written = 0
    try:
        for written, row in enumerate(rows, start=1):
            problem = _bad_csv_row(row, tuple(header))
            if problem:
                raise DataError(f"{csv_path}, line {written + 1}: the row {problem}; {CSV_FIX}")
            example = tf.train.Example(features=tf.train.Features(feature={
                name: tf.train.Feature(float_list=tf.train.FloatList(value=[float(value)]))
                for name, value in zip(header, row)}))
            writers[(written - 1) % num_shards].write(example.SerializeToString())
        for writer in writers:
            writer.close()
        if written < num_shards:
            raise DataError(f"{csv_path} has {written} data rows, too few for {num_shards} shards; "
                            "ask for at most one shard per row")
        for temporary, final in zip(temporaries, finals):
            tf.io.gfile.rename(temporary, final, overwrite=True)
    finally:
        for writer, temporary in zip(writers, temporaries):
            writer.close()
            if tf.io.gfile.exists(temporary):
                tf.io.gfile.remove(temporary)
    return finals
