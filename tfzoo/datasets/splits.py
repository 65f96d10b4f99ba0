"""The one place that cuts examples into train / validation / test, so every loader splits the same way."""
from __future__ import annotations

import hashlib
from collections.abc import Sequence
from typing import Any

import numpy as np

from tfzoo.datasets.base import DataError, DataSplits, Features, take


def split_indices(
    num_examples: int, *, seed: int, validation_fraction: float, test_fraction: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Shuffle 0..num_examples-1 with `seed` and cut them into disjoint (train, validation, test) indices."""
    check_fractions(validation_fraction, test_fraction)
    num_val = round(num_examples * validation_fraction)
    num_test = round(num_examples * test_fraction)
    num_train = num_examples - num_val - num_test
    # A fraction that is asked for but rounds to zero rows would silently drop that split.
    if num_train < 1 or (validation_fraction > 0 and num_val < 1) or (test_fraction > 0 and num_test < 1):
        raise DataError(
            f"too few examples to split: {num_examples} examples give {num_train} train / {num_val} validation / "
            f"{num_test} test; provide more examples or change validation_fraction / test_fraction (tfzoo train: "
            "--validation-fraction, --test-fraction)"
        )
    order = np.random.default_rng(seed).permutation(num_examples)
    return order[:num_train], order[num_train : num_train + num_val], order[num_train + num_val :]


def group_split_indices(
    groups: Sequence[str], *, seed: int, validation_fraction: float, test_fraction: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(train, validation, test) indices of items labelled with `groups`, all the items of a group in one split.

    A group's split comes from a hash of (seed, group name) alone, not from which other groups there are, so two
    datasets over the same groups (library_docs and its headlines) put each group in the same split. The fractions
    are those of the groups: the items' shares follow them as far as the groups are many and alike in size. Within
    a split the items are shuffled with `seed`.
    """
    check_fractions(validation_fraction, test_fraction)
    bounds = (1.0 - validation_fraction - test_fraction, 1.0 - test_fraction)
    split_of = {}
    for group in sorted(set(groups)):
        draw = int.from_bytes(hashlib.sha256(f"{seed}:{group}".encode()).digest()[:8], "big") / 2**64  # in [0, 1)
        split_of[group] = sum(draw >= bound for bound in bounds)
    codes = np.array([split_of[group] for group in groups], dtype=np.int64)
    counts = [len({group for group, code in split_of.items() if code == split}) for split in range(3)]
    if not counts[0] or (validation_fraction > 0 and not counts[1]) or (test_fraction > 0 and not counts[2]):
        raise DataError(f"too few groups to split: {len(split_of)} groups give {counts[0]} train / {counts[1]} "
                        f"validation / {counts[2]} test; provide more groups or change the fractions")
    rng = np.random.default_rng(seed)
    return tuple(rng.permutation(np.flatnonzero(codes == split)) for split in range(3))


def check_fractions(validation_fraction: float, test_fraction: float) -> None:
    """DataError unless both fractions are in [0, 1) and leave some rows for training."""
    for label, fraction in (("validation_fraction", validation_fraction), ("test_fraction", test_fraction)):
        if not 0.0 <= fraction < 1.0:
            raise DataError(f"{label} must be in [0, 1), got {fraction}")
    if validation_fraction + test_fraction >= 1.0:
        raise DataError(
            f"validation_fraction + test_fraction must leave rows for training, got "
            f"{validation_fraction} + {test_fraction}; lower them"
        )


def random_splits(
    x: Features,
    y: np.ndarray,
    *,
    name: str,
    task: str,
    source: dict[str, Any],
    seed: int,
    validation_fraction: float = 0.15,
    test_fraction: float = 0.15,
    **fields: Any,
) -> DataSplits:
    """DataSplits from one pool of examples, shuffled with `seed` and cut by the fractions.

    `fields` go to DataSplits as they are (num_classes, feature_names, description).
    """
    indices = split_indices(len(y), seed=seed, validation_fraction=validation_fraction, test_fraction=test_fraction)
    return indexed_splits(x, y, indices, name=name, task=task, source=source, **fields)


def indexed_splits(x: Features, y: np.ndarray, indices: tuple[np.ndarray, np.ndarray, np.ndarray], *, name: str,
                   task: str, source: dict[str, Any], **fields: Any) -> DataSplits:
    """DataSplits of the rows that `indices` (train, validation, test) name."""
    train, val, test = indices
    return DataSplits(
        name=name, task=task,
        x_train=take(x, train), y_train=y[train],
        x_val=take(x, val), y_val=y[val],
        x_test=take(x, test), y_test=y[test],
        source=source, **fields,
    )


def holdout_splits(
    x: np.ndarray,
    y: np.ndarray,
    x_test: np.ndarray,
    y_test: np.ndarray,
    *,
    name: str,
    task: str,
    source: dict[str, Any],
    seed: int,
    validation_fraction: float,
    **fields: Any,
) -> DataSplits:
    """DataSplits with a fixed test set; a seeded `validation_fraction` of (x, y) becomes validation."""
    train, val, _ = split_indices(len(x), seed=seed, validation_fraction=validation_fraction, test_fraction=0.0)
    return DataSplits(
        name=name, task=task,
        x_train=take(x, train), y_train=y[train],
        x_val=take(x, val), y_val=y[val],
        x_test=x_test, y_test=y_test,
        source=source, **fields,
    )
