"""User CSV files through pandas: every error says what is wrong with the file and how to fix it."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from tfzoo.datasets.base import DataError, DataSplits
from tfzoo.datasets.splits import random_splits
from tfzoo.tasks import get_task


def read_csv_file(path: Path) -> pd.DataFrame:
    """A CSV file as a table; DataError when it is missing, unreadable or has no rows."""
    if not path.is_file():
        raise DataError(f"CSV file not found: {path}; check the path and the file name")
    try:
        frame = pd.read_csv(path)
    except pd.errors.EmptyDataError:
        frame = pd.DataFrame()
    except (pd.errors.ParserError, UnicodeDecodeError) as error:
        raise DataError(f"{path} is not a readable CSV file ({error}); save it as comma-separated UTF-8") from error
    if frame.empty:
        raise DataError(f"{path} has no data rows; it needs a header line and at least one row per split")
    return frame


def load_csv(
    path: str | Path,
    target: str,
    *,
    task: str,
    seed: int = 0,
    validation_fraction: float = 0.15,
    test_fraction: float = 0.15,
) -> DataSplits:
    """A CSV file with a header: column `target` is the label, every other column a numeric feature.

    task is 'regression', 'binary' (target 0/1) or 'multiclass' (target 0..K-1). Rows are shuffled with
    `seed` and cut into train / validation / test by the fractions.
    """
    path = Path(path).expanduser().resolve()
    try:
        labels = get_task(task).labels
    except ValueError as error:
        raise DataError(str(error)) from None
    frame = read_csv_file(path)
    if target not in frame.columns:
        raise DataError(
            f"{path} has no column {target!r}; its columns are {', '.join(map(str, frame.columns))}. "
            "Pass one of them as the target (--target COLUMN)"
        )
    features = [column for column in frame.columns if column != target]
    if not features:
        raise DataError(f"{path} has only the target column {target!r}; add at least one feature column")
    non_numeric = [str(c) for c in frame.columns if not pd.api.types.is_numeric_dtype(frame[c])]
    if non_numeric:
        raise DataError(
            f"{path}: column(s) {', '.join(non_numeric)} are not numeric; every column must be. Encode them as "
            "numbers (e.g. pd.get_dummies or .astype('category').cat.codes) or drop them, and save the CSV again"
        )
    # Infinite values break training as surely as missing ones, so they are reported together.
    bad = ~np.isfinite(frame.to_numpy(dtype=np.float64))
    if bad.any():
        per_column = ", ".join(f"{frame.columns[i]} ({n} rows)" for i, n in enumerate(bad.sum(axis=0)) if n)
        raise DataError(
            f"{path}: missing (NaN) or infinite values in {per_column}; {int(bad.any(axis=1).sum())} of "
            f"{len(frame)} rows are affected. Fill them (df.fillna(...)) or drop those rows (df.dropna()), "
            "and save the CSV again"
        )
    try:
        y, num_classes = labels(frame[target].to_numpy(dtype=np.float64), target)
    except ValueError as error:  # the task says what the column must hold
        raise DataError(f"{path}: {error}") from None
    x = frame[features].to_numpy(dtype=np.float32)
    return random_splits(
        x, y,
        name="csv", task=task, seed=seed,
        validation_fraction=validation_fraction, test_fraction=test_fraction,
        source={"name": "csv", "seed": seed, "path": str(path), "target": target, "task": task,
                "validation_fraction": validation_fraction, "test_fraction": test_fraction},
        num_classes=num_classes,
        feature_names=tuple(map(str, features)),
        description=f"{path}: {len(frame)} rows, target {target!r}",
    )
