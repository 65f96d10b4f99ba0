"""A user's table as the model sees it: which columns are numbers, which are categories, what the label is, and the
statistics of the training split that the model's preprocessing uses.

`check_table` types every column of a pandas frame and reports every problem of the table in one DataError;
`fit_schema` learns the statistics (medians, means, variances, vocabularies, label values) from the training rows
only. The schema is plain data (`to_json` / `from_json`): config.json and tfzoo.json record it, and the model's
`TableFeatures` layer (tfzoo.tables.features) carries it inside model.keras and the export.
"""
from __future__ import annotations

import math
import re
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field, replace
from typing import Any

import numpy as np
import pandas as pd

from tfzoo.errors import DataError

NUMERIC, CATEGORICAL, HASHED = "numeric", "categorical", "hashed"
CLASSIFICATION_TASKS = ("binary", "multiclass")
TASKS = ("regression", *CLASSIFICATION_TASKS)
MISSING_TOKEN = ""  # a missing category: its own vocabulary entry, and what a served request sends for "unknown"
ONE_HOT_MAX = 32  # vocabularies up to this size are one-hot encoded, larger ones embedded
MAX_VOCABULARY = 10_000  # the most frequent categories kept; the rest share the out-of-vocabulary bucket
HASH_BINS = 1024  # buckets of a hashed (ID-like, declared categorical) column
MAX_CLASSES = 100  # more distinct label values than this is a number to regress, not classes
# A text column is ID-like (a name, a key) when nearly every value is its own: it cannot generalise as a category.
ID_LIKE_FRACTION = 0.5
ID_LIKE_MIN_VALUES = 20
# An object column whose values are mostly numbers is a numeric column with a few bad entries ("?", "n/a").
MOSTLY_NUMERIC = 0.9
# TF Serving input names (SignatureDef keys that REST and gRPC clients send).
INPUT_NAME = re.compile(r"[A-Za-z0-9.][A-Za-z0-9_.\-/]*")


@dataclass(frozen=True)
class Column:
    """One feature column: its name in the table, its serving input name, its kind and training statistics.

    numeric: `median` (imputes a missing value), `mean`/`variance` (of the imputed training values, for the
    normalisation), `missing` (the training rows had missing values: the model also sees a missing indicator).
    categorical: `vocabulary` (MISSING_TOKEN first, then the training values by frequency; others share one
    out-of-vocabulary bucket). hashed: `bins` buckets of a hash of the value (an ID-like column declared
    categorical).
    """

    name: str
    input: str
    kind: str
    median: float = 0.0
    mean: float = 0.0
    variance: float = 1.0
    missing: bool = False
    vocabulary: tuple[str, ...] = ()
    bins: int = 0

    @property
    def one_hot(self) -> bool:
        return self.kind == CATEGORICAL and len(self.vocabulary) + 1 <= ONE_HOT_MAX

    @property
    def embedding_dim(self) -> int:
        """Width of a large vocabulary's (or a hashed column's) embedding: fast.ai's rule of thumb, capped at 16."""
        size = self.bins if self.kind == HASHED else len(self.vocabulary) + 1
        return min(16, round(1.6 * size ** 0.56))

    @property
    def width(self) -> int:
        """Values this column contributes to the encoded feature vector."""
        if self.kind == NUMERIC:
            return 1 + self.missing
        return len(self.vocabulary) + 1 if self.one_hot else self.embedding_dim


@dataclass(frozen=True)
class TableSchema:
    """The columns a table model reads (in table order), its target and task, and what its labels are.

    `classes`: the label values as text in sorted order (scikit-learn's `classes_`), the order of `probabilities`;
    for a binary task `classes[1]` is the positive class (`positive_class`), whose probability is `probability`.
    `target_mean` / `target_variance`: a regression target's training statistics (the model learns the
    standardised target and answers in the target's units).
    """

    columns: tuple[Column, ...]
    target: str
    task: str
    classes: tuple[str, ...] = ()
    target_mean: float = 0.0
    target_variance: float = 1.0
    dropped: tuple[str, ...] = field(default=())

    @property
    def width(self) -> int:
        """Length of the encoded feature vector the core model takes."""
        return sum(column.width for column in self.columns)

    @property
    def positive_class(self) -> str | None:
        return self.classes[1] if self.task == "binary" else None

    def column(self, input_name: str) -> Column:
        return next(column for column in self.columns if column.input == input_name)

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, payload: dict[str, Any]) -> TableSchema:
        columns = tuple(Column(**{**column, "vocabulary": tuple(column["vocabulary"])})
                        for column in payload["columns"])
        return cls(**{**payload, "columns": columns, "classes": tuple(payload["classes"]),
                      "dropped": tuple(payload.get("dropped", ()))})

    def summary(self) -> str:
        """One line per column kind, for a dataset's description."""
        kinds = {kind: [c.name for c in self.columns if c.kind == kind] for kind in (NUMERIC, CATEGORICAL, HASHED)}
        parts = [f"{len(names)} {kind} ({', '.join(names[:6])}{', ...' if len(names) > 6 else ''})"
                 for kind, names in kinds.items() if names]
        imputed = [c.name for c in self.columns if c.missing]
        label = f"{self.task} target {self.target!r}"
        if self.classes:
            label += f" (classes {', '.join(self.classes[:10])}{', ...' if len(self.classes) > 10 else ''})"
        return (f"{label}; columns: {'; '.join(parts)}" + (f"; imputed: {', '.join(imputed)}" if imputed else "")
                + (f"; dropped: {', '.join(self.dropped)}" if self.dropped else ""))

    def encode_labels(self, values: pd.Series | Sequence[Any]) -> np.ndarray:
        """Target values as the model trains on them: float32 [N, 1] for regression (in the target's units) and
        binary (1.0 for the positive class), int64 class indices [N] for multiclass."""
        series = pd.Series(values)
        if self.task == "regression":
            return pd.to_numeric(series).to_numpy(np.float32)[:, None]
        text = as_text(series)
        unknown = sorted(set(text) - set(self.classes))
        if unknown:
            raise DataError(f"target {self.target!r} holds {', '.join(map(repr, unknown[:5]))}, not among the trained "
                            f"classes {', '.join(self.classes)}")
        if self.task == "binary":
            return (text == self.classes[1]).to_numpy(np.float32)[:, None]
        return text.map({label: i for i, label in enumerate(self.classes)}).to_numpy(np.int64)


def as_text(values: pd.Series) -> pd.Series:
    """Values as the text a model sees for a category or label: whole numbers without '.0' (a column of 0/1 that
    pandas read as floats because of a gap gives '0' and '1'), booleans 'True'/'False', missing as MISSING_TOKEN."""
    def text(value: Any) -> str:
        if value is None or (isinstance(value, float) and math.isnan(value)):
            return MISSING_TOKEN
        if isinstance(value, (float, np.floating)) and float(value).is_integer():
            return str(int(value))
        return str(value)

    return values.map(text).astype(object)


def sorted_classes(values: pd.Series) -> tuple[str, ...]:
    """The distinct non-missing values as text, sorted as their values sort (numbers numerically, like numpy's
    unique and scikit-learn's `classes_`)."""
    present = values.dropna()
    try:
        distinct = sorted(set(present.tolist()))
    except TypeError:  # mixed types (numbers and text): sorted as text
        distinct = sorted(set(present.map(str).tolist()))
    return tuple(dict.fromkeys(as_text(pd.Series(distinct, dtype=object))))


@dataclass(frozen=True)
class TablePlan:
    """What `check_table` decided before any statistics: the kind of each kept column, the task and the classes."""

    kinds: dict[str, str]
    target: str
    task: str
    classes: tuple[str, ...]
    dropped: tuple[str, ...]


def check_table(
    frame: pd.DataFrame,
    target: str,
    *,
    task: str | None = None,
    categorical: Iterable[str] = (),
    drop: Iterable[str] = (),
    positive_class: str | None = None,
    where: str = "the table",
) -> TablePlan:
    """Type every column of `frame` and check the table; every problem is reported at once in one DataError.

    Numeric columns (numbers, missing values allowed) and categorical ones (text, booleans, and the columns named
    in `categorical`) are kept; `drop` names columns to leave out. A text column where nearly every value is its
    own (an ID, a name) is refused unless dropped, or declared categorical (then hashed). `task` None infers it
    from the target: text or booleans are classes, numbers with two values binary, whole numbers >= 0 with at
    most MAX_CLASSES values multiclass, other numbers regression. A 'binary' task whose target has more than two
    values is 'multiclass'. `positive_class` (binary only) is moved to `classes[1]`.
    """
    categorical, drop = tuple(dict.fromkeys(categorical)), tuple(dict.fromkeys(drop))
    problems: list[str] = []
    columns = [str(c) for c in frame.columns]
    for flag, names in (("--drop", drop), ("--categorical", categorical)):
        unknown = [name for name in names if name not in columns]
        if unknown:
            problems.append(f"{flag} names {', '.join(map(repr, unknown))}, not a column of {where}")
    if target in drop:
        problems.append(f"--drop names the target {target!r}; leave it out of --drop")
    if len(set(columns)) != len(columns):
        problems.append("the header repeats a column name; give every column its own name")
    if target not in columns:
        raise DataError(f"{where} has no column {target!r}; its columns are {', '.join(columns)}. Pass one of them "
                        "as the target (--target COLUMN)")
    kinds: dict[str, str] = {}
    for name in columns:
        if name == target or name in drop:
            continue
        kind, problem = column_kind(frame[name], name, declared_categorical=name in categorical)
        if problem:
            problems.append(problem)
        else:
            kinds[name] = kind
    if not kinds and not problems:
        problems.append(f"no feature column is left beside the target {target!r}; keep at least one")
    inputs = [input_name(name) for name in kinds]
    clashes = sorted({name for name, key in zip(kinds, inputs) if inputs.count(key) > 1})
    if clashes:
        problems.append(f"columns {', '.join(map(repr, clashes))} differ only in characters a serving input name "
                        "cannot hold (letters, digits, '_', '.', '-', '/'); rename one of them")
    task, classes, problem = target_task(frame[target], target, task, positive_class)
    if problem:
        problems.append(problem)
    if problems:
        missing = frame.isna().sum()
        counts = ", ".join(f"{name} {int(n)}" for name, n in missing.items() if n)
        raise DataError(f"{where} cannot be trained on as it is:\n" + "\n".join(f"  - {p}" for p in problems)
                        + (f"\n  (missing values per column: {counts})" if counts else ""))
    return TablePlan(kinds, target, task, classes, drop)


def column_kind(values: pd.Series, name: str, *, declared_categorical: bool) -> tuple[str, str | None]:
    """(kind, None) for a usable feature column, or ("", the problem) for one that cannot be used as it is."""
    present = values.dropna()
    if present.empty:
        return "", f"column {name!r} has no values at all; leave it out with --drop {name}"
    distinct = present.nunique()
    id_like = distinct >= max(ID_LIKE_MIN_VALUES, ID_LIKE_FRACTION * len(present))
    if declared_categorical:
        return (HASHED if id_like else CATEGORICAL), None
    if pd.api.types.is_bool_dtype(values) or isinstance(values.dtype, pd.CategoricalDtype):
        return CATEGORICAL, None
    if pd.api.types.is_datetime64_any_dtype(values):
        return "", (f"column {name!r} holds dates; leave it out with --drop {name}, or turn it into numbers (the "
                    "year, the day of the week) in columns of their own")
    numbers = pd.to_numeric(present, errors="coerce")
    if numbers.notna().all():
        infinite = int(np.isinf(numbers.to_numpy(np.float64)).sum())
        if infinite:
            return "", f"column {name!r} holds infinite values in {infinite} rows; replace them (e.g. with NaN)"
        return NUMERIC, None
    if numbers.notna().mean() >= MOSTLY_NUMERIC:
        odd = present[numbers.isna()]
        return "", (f"column {name!r} holds numbers but also {', '.join(map(repr, odd.unique()[:5].tolist()))} in "
                    f"{len(odd)} rows; make those values empty (missing) or numbers, or declare the column "
                    f"categorical (--categorical {name})")
    if id_like:
        return "", (f"column {name!r} looks like an identifier or a name ({distinct} distinct values in "
                    f"{len(present)} rows): as a category it cannot generalise; leave it out with --drop {name}, "
                    f"or declare it categorical (--categorical {name}) to hash it")
    return CATEGORICAL, None


def target_task(values: pd.Series, target: str, task: str | None,
                positive_class: str | None) -> tuple[str, tuple[str, ...], str | None]:
    """(task, classes, problem or None) for the target column; see check_table."""
    present = values.dropna()
    if present.empty:
        return task or "regression", (), f"target {target!r} has no values; pick another --target"
    numeric = pd.api.types.is_numeric_dtype(values) and not pd.api.types.is_bool_dtype(values)
    classes = sorted_classes(values)
    if task is None:
        whole = numeric and bool((present == np.round(present)).all() and (present >= 0).all())
        if not numeric or len(classes) == 2 or (whole and len(classes) <= MAX_CLASSES):
            task = "binary" if len(classes) == 2 else "multiclass"
        else:
            task = "regression"
    if task not in TASKS:
        return task, (), f"task must be one of {', '.join(TASKS)}, got {task!r}"
    if task == "regression":
        if not numeric:
            return task, (), (f"target {target!r} holds text (e.g. {present.iloc[0]!r}); a regression model needs "
                              "numbers: pick a classification model (logistic_regression, binary_mlp) for labels")
        if np.isinf(present.to_numpy(np.float64)).any():
            return task, (), f"target {target!r} holds infinite values; replace or drop those rows"
        return task, (), None
    if len(classes) < 2:
        return task, classes, (f"target {target!r} holds one value ({classes[0]!r}); a classifier needs at least "
                               "two classes")
    if len(classes) > MAX_CLASSES:
        return task, (), (f"target {target!r} has {len(classes)} distinct values, too many for classes (at most "
                          f"{MAX_CLASSES}); to predict a number use a regression model (linear_regression)")
    if task == "binary" and len(classes) > 2:
        task = "multiclass"
    if positive_class is not None:
        if task != "binary":
            return task, classes, (f"--positive-class is for a two-class target; {target!r} has {len(classes)} "
                                   f"classes ({', '.join(classes[:10])})")
        if positive_class not in classes:
            return task, classes, (f"--positive-class {positive_class!r} is not a value of {target!r}; its values "
                                   f"are {', '.join(map(repr, classes))}")
        classes = (next(c for c in classes if c != positive_class), positive_class)
    return task, classes, None


def input_name(column: str) -> str:
    """The serving input name of a column: itself when TF Serving accepts it, else with other characters as '_'."""
    if INPUT_NAME.fullmatch(column):
        return column
    cleaned = re.sub(r"[^A-Za-z0-9_.\-/]", "_", column)
    return cleaned if INPUT_NAME.fullmatch(cleaned) else f"x{cleaned}"


def fit_schema(plan: TablePlan, train: pd.DataFrame) -> TableSchema:
    """The schema of `plan` with its statistics learned from the training rows `train` alone."""
    columns = tuple(fit_column(name, kind, train[name]) for name, kind in plan.kinds.items())
    schema = TableSchema(columns, plan.target, plan.task, plan.classes, dropped=plan.dropped)
    if plan.task == "regression":
        target = pd.to_numeric(train[plan.target]).to_numpy(np.float64)
        schema = replace(schema, target_mean=float(target.mean()), target_variance=float(max(target.var(), 1e-12)))
    return schema


def fit_column(name: str, kind: str, values: pd.Series) -> Column:
    """One column's training statistics (see Column)."""
    column = Column(name=name, input=input_name(name), kind=kind)
    if kind == NUMERIC:
        numbers = pd.to_numeric(values).to_numpy(np.float64, na_value=np.nan)
        missing = np.isnan(numbers)
        median = float(np.median(numbers[~missing])) if (~missing).any() else 0.0
        imputed = np.where(missing, median, numbers)
        return replace(column, median=median, mean=float(imputed.mean()), variance=float(imputed.var()),
                       missing=bool(missing.any()))
    if kind == HASHED:
        return replace(column, bins=HASH_BINS)
    counts = as_text(values).value_counts()
    frequent = sorted(((-n, value) for value, n in counts.items() if value != MISSING_TOKEN))[:MAX_VOCABULARY]
    return replace(column, vocabulary=(MISSING_TOKEN, *(value for _, value in frequent)))


def model_inputs(frame: pd.DataFrame, schema: TableSchema) -> dict[str, np.ndarray]:
    """The model's inputs from a frame with the schema's columns: float32 [N] (NaN where missing) for numeric
    columns, text [N] (MISSING_TOKEN where missing) for the others, keyed by serving input name."""
    absent = [column.name for column in schema.columns if column.name not in frame.columns]
    if absent:
        raise DataError(f"the rows lack the column(s) {', '.join(map(repr, absent))} the model was trained on")
    inputs = {}
    for column in schema.columns:
        values = frame[column.name]
        if column.kind == NUMERIC:
            try:
                inputs[column.input] = pd.to_numeric(values).to_numpy(np.float32, na_value=np.nan)
            except (ValueError, TypeError):
                raise DataError(f"column {column.name!r} must hold numbers (it did in training), got "
                                f"{values.iloc[0]!r}") from None
        else:
            inputs[column.input] = as_text(values).to_numpy(object)
    return inputs
