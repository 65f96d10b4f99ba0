"""User CSV files through pandas, typed and checked by tfzoo.tables: each error says what is wrong and the fix."""
from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import pandas as pd

from tfzoo.datasets.base import DataError, DataSplits
from tfzoo.datasets.splits import indexed_splits, split_indices
from tfzoo.tables.schema import check_table, fit_schema, model_inputs


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
    task: str | None = None,
    categorical: Sequence[str] = (),
    drop: Sequence[str] = (),
    positive_class: str | None = None,
    seed: int = 0,
    validation_fraction: float = 0.15,
    test_fraction: float = 0.15,
) -> DataSplits:
    """A CSV file with a header, as it comes: column `target` is the label, every other column a feature.

    Numbers (missing values allowed), categories (text, booleans, and the columns named in `categorical`) and
    labels of any kind; `drop` names columns to leave out. Every problem of the table is reported at once, in one
    DataError, before anything else happens (see tfzoo.tables.check_table). `task` is 'regression', 'binary' or
    'multiclass', or None to infer it from the target; a binary task whose target has more than two values is
    multiclass, and `positive_class` picks the positive one of two (default: the second in sorted order, as
    scikit-learn). Rows without a target value are left out. Rows are shuffled with `seed` and cut into train /
    validation / test by the fractions; the preprocessing statistics (the schema) come from the training rows only.
    """
    path = Path(path).expanduser().resolve()
    frame = read_csv_file(path)
    plan = check_table(frame, target, task=task, categorical=categorical, drop=drop, positive_class=positive_class,
                       where=str(path))
    labelled = frame[frame[target].notna()].reset_index(drop=True)
    indices = split_indices(len(labelled), seed=seed, validation_fraction=validation_fraction,
                            test_fraction=test_fraction)
    schema = fit_schema(plan, labelled.iloc[indices[0]])
    unlabelled = len(frame) - len(labelled)
    return indexed_splits(
        model_inputs(labelled, schema), schema.encode_labels(labelled[target]), indices,
        name="csv", task=schema.task,
        source={"name": "csv", "seed": seed, "path": str(path), "target": target, "task": task,
                "categorical": list(dict.fromkeys(categorical)), "drop": list(plan.dropped),
                "positive_class": positive_class,
                "validation_fraction": validation_fraction, "test_fraction": test_fraction},
        num_classes=len(schema.classes) if schema.task == "multiclass" else None,
        feature_names=tuple(column.name for column in schema.columns),
        schema=schema,
        description=(f"{path}: {len(labelled)} rows"
                     + (f" ({unlabelled} without a target left out)" if unlabelled else "")
                     + f"; {schema.summary()}"),
    )

