"""Datasets that stream a table from CSV (optionally gzipped) or TFRecord files of tf.train.Example through tf.data.

Nothing holds a whole table: loading makes one streaming pass over every file (the counting pass: row counts for
steps per epoch, the table's profile, the fingerprint) and the pipelines read the files again, a block at a time.
Every path goes through tf.io.gfile and tf.data, so gs:// and the other TensorFlow file systems work as local
paths do.

Files: one glob per split. A CSV has a header line; column `target` is the label, every other column a column of
the table, in header order. A TFRecord holds tf.train.Example records with at most one value per feature:
float_list or int64_list for numbers, bytes_list for text; feature `target` is the label, every other feature a
column, in sorted name order (the features found in the first SCHEMA_ROWS records of the files, each of one type
everywhere). `.gz` names are read as gzip. Every CSV file is checked against the first training file on its first
records (the same header, as many fields); a bad file raises a DataError naming the file, the row where known,
and the fix.

The table is read as `load_csv` reads one (tfzoo.tables): numbers with missing values (an empty CSV field or
another of pandas' missing-value texts, NA_TEXT; a feature an Example lacks), categories (text, booleans, the
columns named in `categorical`) and labels of any kind, with `drop`, `positive_class` and `task` as there. The
counting pass profiles every column of every file (tfzoo.tables.ProfileAccumulator), so the column kinds, the
task, the classes and every problem (reported at once, in one DataError) are the decisions `check_table` makes on
the whole table. The statistics (medians, means, variances, vocabularies) come from the labelled rows of the
training files alone: moments merged chunk by chunk, the median exact up to MEDIAN_SAMPLE numbers per column and
beyond that the median of a deterministic uniform sample of that many, vocabularies by counting (a column of more
than MAX_DISTINCT distinct values is ID-like). A declared category of numbers sees a whole number as an integer
('7' for '7.0'), any other as written (as '%g' for float values). Rows without a target value are left out.

The pipelines yield ({serving input name: [N] float32, NaN where missing, or [N] string, '' where missing}, labels)
as DataSplits holds a table: labels float32 [N, 1] for regression (the target) and binary (1.0 for the positive
class), int64 class indices [N] for multiclass, encoded in the graph.

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
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import tensorflow as tf

from tfzoo.cluster import cluster_from_tf_config
from tfzoo.datasets.base import SPLITS, DataError, Dataset, distributable, steps_per_epoch
from tfzoo.tables.schema import (
    BOOLEAN_TEXT,
    MISSING_TOKEN,
    NA_TEXT,
    NUMERIC,
    ColumnProfile,
    ProfileAccumulator,
    TableSchema,
    fitted_schema,
    plan_table,
    present_mask,
)

FORMATS = ("auto", "csv", "tfrecord")
TFRECORD_SUFFIXES = (".tfrecord", ".tfrecords", ".tfrec")
SCHEMA_ROWS = 5  # records of every file read for the columns and checked before the counting pass
COUNT_CHUNK = 8192  # records parsed at a time by the counting pass
PARALLEL_FILES = 4  # files read at once (interleaved) by the pipelines
READ_CHUNK = 1024  # records a pipeline reads from one file before turning to the next
TEXT, BOOLEANS, NUMBERS = "text", "booleans", "numbers"  # the forms of a _Reading


@dataclass(frozen=True)
class _Layout:
    """How the records of the files hold the table's columns."""

    file_format: str
    columns: tuple[str, ...]  # CSV: the header; TFRecord: the feature keys, sorted
    kinds: tuple[str, ...] = ()  # TFRecord: 'float_list', 'int64_list' or 'bytes_list' per key

    def records(self, path: tf.Tensor, compression: tf.Tensor) -> tf.data.Dataset:
        """One file's raw records (CSV lines after the header, or serialized Examples)."""
        if self.file_format == "csv":
            return tf.data.TextLineDataset(path, compression_type=compression, buffer_size=1 << 20).skip(1)
        return tf.data.TFRecordDataset(path, compression_type=compression, buffer_size=1 << 20)

    def fields(self, records: tf.Tensor) -> dict[str, tf.Tensor]:
        """A batch of raw records as one [N] tensor per column: text (CSV fields, bytes values; '' where an
        Example lacks the feature) or float64 numbers (NaN where it lacks one)."""
        if self.file_format == "csv":
            # String defaults: an empty field is '' (missing), and every field is read as written.
            return dict(zip(self.columns, tf.io.decode_csv(records, [""] * len(self.columns))))
        types = {"float_list": tf.float32, "int64_list": tf.int64, "bytes_list": tf.string}
        parsed = tf.io.parse_example(records, {key: tf.io.RaggedFeature(types[kind])
                                               for key, kind in zip(self.columns, self.kinds)})
        fields = {}
        for key, kind in zip(self.columns, self.kinds):
            values = parsed[key] if kind == "bytes_list" else tf.cast(parsed[key], tf.float64)
            check = tf.debugging.assert_less_equal(
                values.row_lengths(), tf.ones([], values.row_splits.dtype),
                message=f"feature {key!r} holds more than one value in a record; a table column holds one")
            with tf.control_dependencies([check]):
                default = "" if kind == "bytes_list" else math.nan
                fields[key] = values.to_tensor(default, shape=[None, 1])[:, 0]
        return fields


@dataclass(frozen=True)
class _FileStats:
    """What the counting pass learns about one file."""

    rows: int  # with a target value
    unlabelled: int  # without one, left out
    digest: str  # SHA-256 of its records


@dataclass(frozen=True)
class _Reading:
    """How the pipelines read one column's values (text or float64, see `_Layout.fields`): `missing_texts`, the
    texts of NA_TEXT the counting pass saw in it (every file was counted: no other can occur), and `form`, how they
    become a category's or label's text (tfzoo.tables.as_text, number_texts): as they are (TEXT), as booleans
    (BOOLEANS: 'True'/'False') or as numbers (NUMBERS: '7' for '7.0')."""

    form: str
    missing_texts: tuple[str, ...]

    def missing(self, values: tf.Tensor) -> tf.Tensor:
        if values.dtype != tf.string:
            return tf.math.is_nan(values)
        if not self.missing_texts:
            return tf.zeros(tf.shape(values), tf.bool)
        return tf.reduce_any(tf.equal(values[:, None], tf.constant(self.missing_texts)[None, :]), axis=1)

    def numbers(self, values: tf.Tensor) -> tf.Tensor:
        """A numeric column's values as float32, NaN where missing (every present text parses as a number)."""
        if values.dtype == tf.string:
            values = tf.strings.to_number(tf.where(self.missing(values), "nan", values), tf.float64)
        return tf.cast(values, tf.float32)

    def text(self, values: tf.Tensor) -> tf.Tensor:
        """A category's or label's values as the text a model sees, MISSING_TOKEN where missing."""
        missing = self.missing(values)
        if self.form == BOOLEANS:
            true = [written for written, value in BOOLEAN_TEXT.items() if value == "True"]
            text = tf.where(tf.reduce_any(tf.equal(values[:, None], tf.constant(true)[None, :]), axis=1), "True",
                            "False")
        elif self.form == NUMBERS:
            numbers = (values if values.dtype != tf.string
                       else tf.strings.to_number(tf.where(missing, "0", values), tf.float64))
            whole = tf.math.is_finite(numbers) & tf.equal(numbers, tf.round(numbers))
            written = values if values.dtype == tf.string else tf.strings.as_string(numbers, shortest=True)
            text = tf.where(whole, tf.strings.as_string(tf.cast(tf.where(whole, numbers, 0.0), tf.int64)), written)
        else:
            text = values
        return tf.where(missing, MISSING_TOKEN, text)


class FileDataset(Dataset):
    """A table's train / validation / test streamed from files; see the module docstring for formats, the table,
    order and sharding."""

    def __init__(self, *, source: dict[str, Any], layout: _Layout, schema: TableSchema, readings: dict[str, _Reading],
                 files: dict[str, tuple[str, ...]], rows: dict[str, int], unlabelled: int, fingerprint: str,
                 shuffle_buffer: int) -> None:
        self.name = "files"
        self.task = schema.task
        self.source = source
        self.schema = schema
        self.num_classes = len(schema.classes) if schema.task == "multiclass" else None
        self.feature_names = tuple(column.name for column in schema.columns)
        self.description = (", ".join(f"{split}: {len(files[split])} {layout.file_format} files, {rows[split]} rows"
                                      for split in SPLITS)
                            + (f" ({unlabelled} without a target left out)" if unlabelled else "")
                            + f"; {schema.summary()}")
        self._layout = layout
        self._readings = readings
        self._files = files
        self._rows = rows
        self._fingerprint = fingerprint
        self._shuffle_buffer = shuffle_buffer

    @property
    def input_shape(self) -> tuple[int, ...]:
        """The length of the encoded feature vector the core model takes (the table's columns come in raw)."""
        return (self.schema.width,)

    @property
    def fingerprint(self) -> str:
        """SHA-256 over the layout, the schema and, per file in order: name, size, row count and a SHA-256 of its
        records (computed by the counting pass, so the files are not read a second time for it)."""
        return self._fingerprint

    def num_examples(self, split: str) -> int:
        return self._rows[_split(split)]

    def first_features(self, split: str, count: int) -> dict[str, np.ndarray]:
        """{serving input name: [count]}: float32 for numbers, str objects for the others (as DataSplits holds)."""
        features, _ = next(iter(self.pipeline(split, count)))
        return {key: _decoded(value.numpy()) for key, value in features.items()}

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
            lambda name, compression: self._layout.records(name, compression).batch(READ_CHUNK),
            cycle_length=max(cycle, 1), num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
        blocks = chunks.map(self._examples, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
        if seed is None:
            return blocks

        def permute(block_index: tf.Tensor, block: tuple[dict[str, tf.Tensor], tf.Tensor]) -> Any:
            block_seed = tf.random.experimental.stateless_fold_in(seed, block_index)
            order = tf.random.experimental.stateless_shuffle(tf.range(tf.shape(block[1])[0]), seed=block_seed)
            return tf.nest.map_structure(lambda part: tf.gather(part, order), block)

        return blocks.rebatch(self._shuffle_buffer).enumerate().map(permute, num_parallel_calls=tf.data.AUTOTUNE)

    def _examples(self, records: tf.Tensor) -> tuple[dict[str, tf.Tensor], tf.Tensor]:
        """A chunk of raw records as (the model's inputs, labels), as DataSplits holds a table; rows without a
        target value are left out."""
        schema, readings = self.schema, self._readings
        fields = self._layout.fields(records)
        labelled = ~readings[schema.target].missing(fields[schema.target])
        fields = {name: tf.boolean_mask(fields[name], labelled) for name in readings}
        features = {column.input: readings[column.name].numbers(fields[column.name]) if column.kind == NUMERIC
                    else readings[column.name].text(fields[column.name]) for column in schema.columns}
        if schema.task == "regression":
            return features, readings[schema.target].numbers(fields[schema.target])[:, None]
        target = readings[schema.target].text(fields[schema.target])
        if schema.task == "binary":
            return features, tf.cast(tf.equal(target, schema.positive_class), tf.float32)[:, None]
        # The index of the class each label is (every label is one: the counting pass saw them all).
        return features, tf.argmax(tf.cast(tf.equal(target[:, None], tf.constant(schema.classes)[None, :]), tf.int32),
                                   axis=1)


def load_files(
    train: str,
    validation: str,
    test: str,
    target: str,
    *,
    task: str | None = None,
    categorical: Sequence[str] = (),
    drop: Sequence[str] = (),
    positive_class: str | None = None,
    file_format: str = "auto",
    shuffle_buffer: int = 10_000,
    seed: int = 0,
) -> FileDataset:
    """A table streamed from the files each glob matches (one glob per split); see the module docstring.

    file_format is 'csv', 'tfrecord' or 'auto' (from the names: .csv[.gz], .tfrecord[s][.gz], .tfrec[.gz]).
    `task` ('regression', 'binary' or 'multiclass', None to infer it), `categorical`, `drop` and `positive_class`
    are load_csv's. `seed` is kept in `source` for load_dataset; the training order takes the trainer's seed. Reads
    every file once; every problem of the table is reported at once, in one DataError.
    """
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
    layout = _read_layout(every_file, formats[every_file[0]], target)
    if layout.file_format == "csv":
        for path in every_file:
            _check_first_records(path, layout, every_file[0])
    # The statistics come from the training files' labelled rows alone; typing and checks see every row of every
    # file: those rows (profiled once) merged into all the others.
    statistics = {name: ProfileAccumulator(statistics=True) for name in layout.columns}
    typing = {name: ProfileAccumulator(statistics=False) for name in layout.columns}
    stats = {path: _count(path, layout, target, statistics if split == "train" else None, typing)
             for split in SPLITS for path in files[split]}
    for name, accumulator in typing.items():
        accumulator.merge(statistics[name])
    profiles = {name: accumulator.profile() for name, accumulator in typing.items()}
    plan = plan_table(layout.columns, profiles, target, task=task, categorical=categorical, drop=drop,
                      positive_class=positive_class, where=f"the files {train}, {validation}, {test}")
    schema = fitted_schema(plan, {name: statistics[name].profile(typing[name]) for name in (*plan.kinds, target)})
    rows = {split: sum(stats[path].rows for path in files[split]) for split in SPLITS}
    for split in SPLITS:
        if not rows[split]:
            raise DataError(f"the {split} files hold no row with a value of {target!r}; provide labelled rows")
    digest = hashlib.sha256(json.dumps([layout.file_format, layout.columns, layout.kinds, schema.to_json()],
                                       sort_keys=True).encode())
    for split in SPLITS:
        for path in files[split]:
            digest.update(json.dumps([split, path.rsplit("/", 1)[-1], tf.io.gfile.stat(path).length,
                                      stats[path].rows, stats[path].digest]).encode())
    source = {"name": "files", "seed": seed, "train": train, "validation": validation, "test": test,
              "target": target, "task": schema.task, "categorical": list(dict.fromkeys(categorical)),
              "drop": list(plan.dropped), "positive_class": positive_class, "file_format": layout.file_format,
              "shuffle_buffer": shuffle_buffer}
    return FileDataset(source=source, layout=layout, schema=schema,
                       readings={name: _reading(profiles[name], typing[name]) for name in (*plan.kinds, target)},
                       files=files, rows=rows,
                       unlabelled=sum(s.unlabelled for s in stats.values()), fingerprint=digest.hexdigest(),
                       shuffle_buffer=shuffle_buffer)


def _reading(profile: ColumnProfile, counted: ProfileAccumulator) -> _Reading:
    """How the pipelines read a column, from what the counting pass saw of it."""
    form = BOOLEANS if profile.categories else NUMBERS if profile.numeric else TEXT
    return _Reading(form, tuple(sorted(counted.missing_texts)))


def _decoded(values: np.ndarray) -> np.ndarray:
    """Text from TensorFlow (bytes) as str objects; numbers as they are. UnicodeDecodeError for bytes that are not
    UTF-8."""
    if values.dtype != object:
        return values
    return np.array([value.decode("utf-8") for value in values], dtype=object)


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


def _read_layout(paths: Sequence[str], file_format: str, target: str) -> _Layout:
    """The columns of the files: a CSV's are the first one's header (every other file must repeat it, see
    `_check_first_records`); a TFRecord's the features of the first SCHEMA_ROWS records of every file, each of one
    type everywhere and one value at most."""
    first = paths[0]
    if file_format == "csv":
        header = next(_csv_rows(first), None)
        if not header:
            raise DataError(f"{first} is empty; a CSV needs a header line and data rows")
        if len(set(header)) != len(header):
            raise DataError(f"{first} repeats a column name in its header {header}; give every column its own name")
        layout = _Layout("csv", tuple(header))
    else:
        kinds: dict[str, tuple[str, str]] = {}  # feature: (type, where it was first seen)
        for path in paths:
            examples = _first_examples(path)
            if not examples:
                raise DataError(f"{path} holds no records; write at least one tf.train.Example to it or leave it out")
            for number, example in enumerate(examples, start=1):
                for key, feature in sorted(example.features.feature.items()):
                    kind = feature.WhichOneof("kind")
                    if not kind:  # a feature of no type holds no value
                        continue
                    seen, where = kinds.setdefault(key, (kind, f"{path}, record {number}"))
                    problem = (f"feature {key!r} is a {kind} here but a {seen} in {where}" if kind != seen
                               else f"feature {key!r} holds {len(getattr(feature, kind).value)} values"
                               if len(getattr(feature, kind).value) > 1 else None)
                    if problem:
                        raise DataError(f"{path}, record {number}: {problem}; every feature needs one type in every "
                                        "record, and one value at most (leave it out for a missing value)")
        layout = _Layout("tfrecord", tuple(sorted(kinds)), tuple(kinds[key][0] for key in sorted(kinds)))
    if target not in layout.columns:
        raise DataError(f"{first} has no column {target!r}; its columns are {', '.join(layout.columns)}. "
                        "Pass one of them as the target (--target COLUMN)")
    if len(layout.columns) == 1:
        raise DataError(f"{first} has only the target column {target!r}; add at least one feature column")
    return layout


def _bad_csv_row(row: list[str], columns: Sequence[str]) -> str | None:
    """What is wrong with one CSV data row, or None."""
    return None if len(row) == len(columns) else f"has {len(row)} fields, the header {len(columns)}"


CSV_FIX = "every row needs one field per column of the header (an empty field is a missing value)"


def _check_first_records(path: str, layout: _Layout, first: str) -> None:
    """A CSV file's header is the first training file's, and its first rows have as many fields."""
    rows = _csv_rows(path)
    header = next(rows, None)
    if not header:
        raise DataError(f"{path} is empty; a CSV needs a header line and data rows")
    if tuple(header) != layout.columns:
        raise DataError(f"{path} has the columns {', '.join(header)}, but {first} has "
                        f"{', '.join(layout.columns)}; every file needs the same header")
    count = 0
    for count, row in enumerate(rows, start=1):
        problem = _bad_csv_row(row, layout.columns)
        if problem:
            raise DataError(f"{path}, line {count + 1}: the row {problem}; {CSV_FIX}")
        if count == SCHEMA_ROWS:
            break
    if count == 0:
        raise DataError(f"{path} has a header but no data rows; add rows or leave the file out of the glob")


def _count(path: str, layout: _Layout, target: str, statistics: dict[str, ProfileAccumulator] | None,
           typing: dict[str, ProfileAccumulator]) -> _FileStats:
    """One streaming pass over a file: its rows, a digest of its records, and every column's values profiled: a
    training file's labelled rows into `statistics`, every other row into `typing`."""
    dataset = layout.records(tf.constant(path), tf.constant(_compression(path))).batch(COUNT_CHUNK)
    dataset = dataset.map(lambda chunk: (tf.strings.length(chunk), tf.strings.reduce_join(chunk),
                                         layout.fields(chunk)))
    digest = hashlib.sha256()
    rows = unlabelled = 0
    iterator = iter(dataset)
    while True:
        try:
            lengths, joined, fields = next(iterator)
        except StopIteration:
            break
        except tf.errors.OpError as error:
            raise _locate(path, layout, rows + unlabelled, error) from None
        digest.update(lengths.numpy().tobytes())
        digest.update(joined.numpy())
        try:
            columns = {name: _decoded(values.numpy()) for name, values in fields.items()}
        except UnicodeDecodeError:
            raise DataError(f"{path}: a value after row {rows + unlabelled} is not UTF-8 text; save the file as "
                            "UTF-8") from None
        labelled = present_mask(columns[target])
        for name, values in columns.items():
            if statistics is None:
                typing[name].add(values)
            elif labelled.all():
                statistics[name].add(values)
            else:
                statistics[name].add(values[labelled])
                typing[name].add(values[~labelled])
        rows += int(labelled.sum())
        unlabelled += int((~labelled).sum())
    if rows + unlabelled == 0:
        raise DataError(f"{path} has no data rows; add rows or leave the file out of the glob")
    return _FileStats(rows, unlabelled, digest.hexdigest())


def _locate(path: str, layout: _Layout, offset: int, error: tf.errors.OpError) -> DataError:
    """A DataError for a chunk that failed to parse, naming the first bad row after `offset` where it can."""
    message = error.message.splitlines()[0] if error.message else type(error).__name__
    if layout.file_format == "csv":
        rows = _csv_rows(path)
        next(rows, None)
        for number, row in enumerate(rows, start=1):
            if number > offset and (problem := _bad_csv_row(row, layout.columns)):
                return DataError(f"{path}, line {number + 1}: the row {problem}; {CSV_FIX}")
            if number > offset + COUNT_CHUNK:
                break
    return DataError(f"{path}: cannot read the records after row {offset} ({message}); "
                     "fix or rewrite the file (one value at most per feature, of the type it has in the other records)")


def write_tfrecord_shards(csv_path: str, out_dir: str, num_shards: int) -> list[str]:
    """Write a CSV (optionally .gz) as `num_shards` TFRecord files of tf.train.Example, one feature per column: a
    column of numbers (and missing values) as float_list, any other as bytes_list; a missing value (a text of
    NA_TEXT) is left out of its Example.

    The file is streamed twice, never held: once to tell the columns of numbers, once to write. Rows are dealt
    round-robin, so shards differ in size by at most one row. Each shard is written under a hidden temporary name
    and renamed into place when every shard is complete, so a glob for the shards never matches a half-written
    one. Returns the shard paths.
    """
    if isinstance(num_shards, bool) or not isinstance(num_shards, int) or num_shards < 1:
        raise DataError(f"num_shards must be a positive integer, got {num_shards!r}")
    numbers = _number_columns(csv_path)
    header = list(numbers)
    stem = csv_path.rsplit("/", 1)[-1].removesuffix(".gz").removesuffix(".csv")
    try:
        tf.io.gfile.makedirs(out_dir)
    except tf.errors.OpError as error:  # a file in the way (--out AFILE, or a file on the path)
        raise DataError(f"cannot write the shards into {out_dir}: {error.message}; pass --out a folder (a missing "
                        "one is made)") from None
    finals = [f"{out_dir.rstrip('/')}/{stem}-{i:05d}-of-{num_shards:05d}.tfrecord" for i in range(num_shards)]
    temporaries = [f"{out_dir.rstrip('/')}/.{stem}-{i:05d}.tmp-{uuid.uuid4().hex}" for i in range(num_shards)]
    writers = [tf.io.TFRecordWriter(path) for path in temporaries]
    rows = _csv_rows(csv_path)
    next(rows)
    written = 0
    try:
        for written, row in enumerate(rows, start=1):
            example = tf.train.Example()
            for name, value in zip(header, row):
                if value in NA_TEXT:
                    continue
                feature = example.features.feature[name]
                if numbers[name]:
                    feature.float_list.value.append(float(value))
                else:
                    feature.bytes_list.value.append(value.encode("utf-8"))
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


def _number_columns(csv_path: str) -> dict[str, bool]:
    """{column: whether it holds numbers (and missing values) only}, in header order, from one pass over the CSV
    that also checks every row's field count."""
    rows = _csv_rows(csv_path)
    header = next(rows, None)
    if not header:
        raise DataError(f"{csv_path} is empty; a CSV needs a header line and data rows")
    profiles = [ProfileAccumulator(statistics=False) for _ in header]
    chunk: list[list[str]] = []
    for line, row in enumerate(rows, start=2):
        problem = _bad_csv_row(row, header)
        if problem:
            raise DataError(f"{csv_path}, line {line}: the row {problem}; {CSV_FIX}")
        chunk.append(row)
        if len(chunk) == COUNT_CHUNK:
            _profile_rows(profiles, chunk)
            chunk = []
    _profile_rows(profiles, chunk)
    return {name: profile.profile().numeric for name, profile in zip(header, profiles)}


def _profile_rows(profiles: list[ProfileAccumulator], rows: list[list[str]]) -> None:
    for profile, values in zip(profiles, zip(*rows)):
        profile.add(np.array(values, dtype=object))
