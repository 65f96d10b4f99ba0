"""The in-memory dataset every loader returns, and the one place that turns it into tf.data pipelines."""
from __future__ import annotations

import abc
import hashlib
import json
import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Union

import numpy as np
import tensorflow as tf

from tfzoo.errors import DataError as DataError  # also imported from here
from tfzoo.tasks import get_task

if TYPE_CHECKING:
    from tfzoo.tables import TableSchema

SPLITS = ("train", "validation", "test")
# An array [N, ...], or a table's columns {serving input name: [N]}.
Features = Union[np.ndarray, dict[str, np.ndarray]]


class Dataset(abc.ABC):
    """What training, evaluation and export use of a dataset: in memory (DataSplits) or streamed from files.

    `source` holds the keyword arguments of `tfzoo.datasets.load_dataset` that rebuild exactly this data (a run's
    config.json keeps it so `tfzoo evaluate` and `tfzoo export` can reload the held-out split), and equal
    `fingerprint`s mean identical data.
    """

    name: str
    task: str
    source: dict[str, Any]
    num_classes: int | None
    feature_names: tuple[str, ...] | None
    description: str
    schema: TableSchema | None = None  # a user's table: its columns, label values and training statistics

    @property
    @abc.abstractmethod
    def input_shape(self) -> tuple[int, ...]:
        """Shape of one example, without the batch dimension."""

    @property
    @abc.abstractmethod
    def fingerprint(self) -> str:
        """A digest of the data: equal fingerprints mean identical examples."""

    @abc.abstractmethod
    def num_examples(self, split: str) -> int:
        """How many examples one split holds."""

    @abc.abstractmethod
    def first_features(self, split: str, count: int) -> Features:
        """The features of the first `count` examples of a split (all of them when it holds fewer)."""

    @abc.abstractmethod
    def pipeline(self, split: str, batch_size: int, *, shuffle: bool = False, seed: int = 0) -> tf.data.Dataset:
        """One split as (features, labels) batches of the global `batch_size`."""

    @abc.abstractmethod
    def training_pipeline(self, batch_size: int, *, seed: int, epochs: range) -> tf.data.Dataset:
        """The training batches of `epochs` back to back; each epoch's order depends on (seed, epoch) alone."""


@dataclass(frozen=True, eq=False)
class DataSplits(Dataset):
    """Train / validation / test arrays of one dataset, disjoint by construction.

    `source` holds the keyword arguments of `tfzoo.datasets.load_dataset` that rebuild exactly this
    data (it is written to a run's config.json so `tfzoo evaluate` can reload the held-out split).
    Features are float32; labels are float32 [N, 1] for regression and binary tasks, int64 [N] for
    multiclass. A table's features (`schema` set) are {serving input name: [N] array}, one per column: float32
    with NaN where missing, or text (see tfzoo.tables). A language_model task has int32 token ids x [N, T] and
    int32 next-token targets y [N, T] (see tfzoo.text.tokenizer), y being the padding token where no loss is
    taken. `stream_windows`: the training rows are consecutive windows of one token stream (documents packed end to
    end), which training re-cuts at a new offset every epoch (see `training_pipeline`).
    """

    name: str
    task: str
    x_train: Features
    y_train: np.ndarray
    x_val: Features
    y_val: np.ndarray
    x_test: Features
    y_test: np.ndarray
    source: dict[str, Any]
    num_classes: int | None = None
    feature_names: tuple[str, ...] | None = None
    description: str = ""
    stream_windows: bool = False
    schema: TableSchema | None = None
    _arrays: dict[str, tuple[Features, np.ndarray]] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        get_task(self.task)  # a registered task, or ValueError naming the known ones
        arrays = {
            "train": (self.x_train, self.y_train),
            "validation": (self.x_val, self.y_val),
            "test": (self.x_test, self.y_test),
        }
        for split, (x, y) in arrays.items():
            if num_rows(x) != len(y):
                raise ValueError(f"{self.name}: {split} has {num_rows(x)} examples but {len(y)} labels")
            if len(y) == 0:
                raise DataError(f"{self.name}: the {split} split is empty; provide more rows")
        object.__setattr__(self, "_arrays", arrays)

    @property
    def input_shape(self) -> tuple[int, ...]:
        """Shape of one example, without the batch dimension (a table's: its encoded feature vector's)."""
        return (self.schema.width,) if self.schema else tuple(self.x_train.shape[1:])

    def num_examples(self, split: str) -> int:
        return len(self.arrays(split)[1])

    def first_features(self, split: str, count: int) -> Features:
        return take(self.arrays(split)[0], slice(count))

    def arrays(self, split: str) -> tuple[Features, np.ndarray]:
        """(features, labels) of one split: 'train', 'validation' or 'test'."""
        if split not in self._arrays:
            raise ValueError(f"split must be one of {SPLITS}, got {split!r}")
        return self._arrays[split]

    @property
    def fingerprint(self) -> str:
        """SHA-256 over every split's arrays (and a table's schema): equal fingerprints mean identical data."""
        digest = hashlib.sha256()
        if self.schema:
            digest.update(json.dumps(self.schema.to_json(), sort_keys=True).encode())
        for split in SPLITS:
            x, y = self._arrays[split]
            for key, array in sorted(x.items()) if isinstance(x, dict) else [("", x)]:
                digest.update(key.encode())
                array_digest(digest, array)
            array_digest(digest, y)
        return digest.hexdigest()

    def __repr__(self) -> str:  # the arrays would print thousands of numbers
        counts = " / ".join(str(self.num_examples(split)) for split in SPLITS)
        return f"<DataSplits {self.name}: {self.task}, {counts} train/validation/test examples; {self.description}>"

    def pipeline(self, split: str, batch_size: int, *, shuffle: bool = False, seed: int = 0) -> tf.data.Dataset:
        """A pipeline over one split batched by the global `batch_size`: cached, shuffled with `seed` when asked
        (a new order each time it is iterated), prefetched, sharded by data under a multi-worker strategy."""
        x, y = self.arrays(split)
        dataset = tf.data.Dataset.from_tensor_slices((x, y)).cache()
        if shuffle:
            dataset = dataset.shuffle(len(y), seed=seed, reshuffle_each_iteration=True)
        return distributable(dataset.batch(batch_size))

    def training_pipeline(self, batch_size: int, *, seed: int, epochs: range) -> tf.data.Dataset:
        """The training batches of `epochs` back to back, for one iterator that lives across epochs.

        Each epoch's order depends on (seed, epoch) alone, not on how often the dataset was iterated before: a
        run resumed at epoch k, or one under another strategy, sees exactly the batches of an uninterrupted run.
        Batches never straddle two epochs.
        """
        x, y = self.arrays("train")
        features, labels = tf.nest.map_structure(tf.constant, x), tf.constant(y)  # gathered a batch at a time

        def epoch_batches(epoch: tf.Tensor) -> tf.data.Dataset:
            # Stateless draws: no random state, so nothing that iterated before can change them.
            epoch_seed = tf.stack([tf.constant(seed, tf.int64), epoch])
            order = tf.random.experimental.stateless_shuffle(tf.range(len(y), dtype=tf.int64), seed=epoch_seed)
            rows = recut(features, labels, epoch_seed) if self.stream_windows else (features, labels)
            return tf.data.Dataset.from_tensor_slices(order).batch(batch_size).map(
                lambda indices: tf.nest.map_structure(lambda part: tf.gather(part, indices), rows))

        epoch_range = tf.data.Dataset.range(epochs.start, epochs.stop)
        return distributable(epoch_range.flat_map(epoch_batches))


def num_rows(features: Features) -> int:
    """Examples in a features array, or in each column of a table's {input: column}."""
    return len(next(iter(features.values()))) if isinstance(features, dict) else len(features)


def take(features: Features, rows: slice | np.ndarray) -> Features:
    """Some rows of a features array, or of every column of a table's {input: column}."""
    if isinstance(features, dict):
        return {key: column[rows] for key, column in features.items()}
    return features[rows]


def array_digest(digest: Any, array: np.ndarray) -> None:
    """Add an array's dtype, shape and values to `digest`; text by value (an object array's buffer holds pointers)."""
    digest.update(f"{array.dtype}{array.shape}".encode())
    if array.dtype == object:
        for item in array.flat:
            value = item.encode("utf-8") if isinstance(item, str) else bytes(item)
            digest.update(len(value).to_bytes(8, "little") + value)
    else:
        digest.update(np.ascontiguousarray(array).tobytes())


def recut(features: tf.Tensor, labels: tf.Tensor, seed: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
    """Windows [N, T] of one stream, cut again `offset` tokens further on (offset drawn from `seed` in [0, T)); the
    stream wraps around, so there are still N windows.

    Every (token, next token) pair stays a pair, so no target is made up; what changes is where windows start, and
    so the context each position sees. A language model trained on the same N windows every epoch learns them by
    heart; re-cut, it sees new windows each epoch, like the random crops of image training (BENCHMARKS.md,
    "Text generator recipe", has the measured difference).
    """
    length = features.shape[1]
    offset = tf.random.stateless_uniform([], seed=seed, maxval=length, dtype=tf.int64)
    return tuple(tf.reshape(tf.roll(tf.reshape(part, [-1]), -offset, axis=0), tf.shape(part))
                 for part in (features, labels))


def steps_per_epoch(num_examples: int, batch_size: int) -> int:
    """Batches in one epoch; the last one may be short."""
    return math.ceil(num_examples / batch_size)


def distributable(
    batches: tf.data.Dataset,
    shard_policy: tf.data.experimental.AutoShardPolicy = tf.data.experimental.AutoShardPolicy.DATA,
) -> tf.data.Dataset:
    """Prefetched; under a multi-worker strategy sharded by data unless told otherwise: in-memory arrays have no
    files to shard by, so every worker builds the same pipeline (same seed) and keeps its own share of each global
    batch. A pipeline that already reads only this worker's files passes AutoShardPolicy.OFF."""
    options = tf.data.Options()
    options.experimental_distribute.auto_shard_policy = shard_policy
    return batches.prefetch(tf.data.AUTOTUNE).with_options(options)
