"""The one place that cuts examples into train / validation / test, so every loader splits the same way."""
from __future__ import annotations

from typing import Any

import numpy as np

from tfzoo.datasets.base import DataError, DataSplits, Features, take


def split_indices(
    num_examples: int, *, seed: int, validation_fraction: float, test_fraction: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Shuffle 0..num_examples-1 with `seed` and cut them into disjoint (train, validation, test) indices."""
    for label, fraction in (("validation_fraction", validation_fraction), ("test_fraction", test_fraction)):
        if not 0.0 <= fraction < 1.0:
            raise DataError(f"{label} must be in [0, 1), got {fraction}")
    if validation_fraction + test_fraction >= 1.0:
        raise DataError(
            f"validation_fraction + test_fraction must leave rows for training, got "
            f"{validation_fraction} + {test_fraction}; lower them"
        )
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
