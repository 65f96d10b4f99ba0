"""A user's table as the model sees it: which columns are numbers, which are categories, what the label is, and the
statistics of the training split that the model's preprocessing uses.

`check_table` types every column of a pandas frame and reports every problem of the table in one DataError;
`fit_schema` learns the statistics (medians, means, variances, vocabularies, label values) from the training rows
only. Both decide from small per-column summaries (ColumnProfile) that a pandas Series (`profile_values`) or a
column streamed in chunks (`ProfileAccumulator`) gives, so files streamed through tf.data (`plan_table`,
`fitted_schema`) get the decisions and statistics a frame in memory gets. The schema is plain data (`to_json` /
`from_json`): config.json and tfzoo.json record it, and the model's `TableFeatures` layer (tfzoo.tables.features)
carries it inside model.keras and the export.
"""
from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping, Sequence
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
# Distinct values a column's profile counts (bounded, so that streamed counting stays small): a column with more is
# ID-like whatever its row count (too many values for a category, even with the most frequent as its vocabulary).
MAX_DISTINCT = 2 * MAX_VOCABULARY
MEDIAN_SAMPLE = 100_000  # numbers a streamed column keeps for its median (exact up to this many)
ODD_EXAMPLES = 5  # non-numbers a profile remembers, to show in the message of a mostly numeric column
# pandas.read_csv's default missing-value texts: a streamed field (or tf.Example bytes value) equal to one of them is
# missing, as it is for load_csv.
NA_TEXT = frozenset({"", "#N/A", "#N/A N/A", "#NA", "-1.#IND", "-1.#QNAN", "-NaN", "-nan", "1.#IND", "1.#QNAN", "<NA>",
                     "N/A", "NA", "NULL", "NaN", "None", "n/a", "nan", "null"})
# The texts pandas.read_csv reads as booleans, and the text a model sees for each (as_text of the boolean).
BOOLEAN_TEXT = {"True": "True", "TRUE": "True", "true": "True", "False": "False", "FALSE": "False", "false": "False"}
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


def number_texts(values: np.ndarray) -> np.ndarray:
    """The texts a model sees for numbers (as written, or float values) in a category or label: a whole number
    without '.0' ('7' for '7.0' or '007', as as_text gives for a column pandas read as numbers); another as written,
    or a float value as tf.strings.as_string(shortest=True) writes it ('%g', as the streamed pipelines do)."""
    numbers = pd.to_numeric(pd.Series(values, dtype=object)).to_numpy(np.float64)
    whole = np.isfinite(numbers) & (numbers == np.round(numbers))
    texts = np.array(values, dtype=object)
    texts[whole] = numbers[whole].astype(np.int64).astype(str).astype(object)
    for index in np.flatnonzero(~whole):
        if not isinstance(texts[index], str):
            texts[index] = f"{texts[index]:g}"
    return texts


def merge_moments(a: tuple[int, float, float], b: tuple[int, float, float]) -> tuple[int, float, float]:
    """(count, mean, sum of squared deviations) of two groups of numbers together (Chan et al.'s update, which
    stays accurate where summing squares would not)."""
    (count_a, mean_a, squares_a), (count_b, mean_b, squares_b) = a, b
    count = count_a + count_b
    if count == 0:
        return 0, 0.0, 0.0
    delta = mean_b - mean_a
    return count, mean_a + delta * count_b / count, squares_a + squares_b + delta * delta * count_a * count_b / count


@dataclass(frozen=True)
class ColumnProfile:
    """What the typing, the checks and the statistics need to know of one column: from a pandas Series
    (`profile_values`) or from chunks streamed through a `ProfileAccumulator`, so that both decide alike.

    `numbers`: the present values that parse as numbers (none for columns typed by their values' type:
    `categories`, booleans or a pandas Categorical, and `dates`); `infinite`, `whole` (every one a whole number
    >= 0), `mean`, `variance` (population) and `median` are of those numbers. `odd`: the first few distinct present
    values that are not numbers; `first`: the first present value, as text. `counts`: the present values by the
    text a model sees (as_text), None beyond MAX_DISTINCT distinct values.
    """

    present: int
    missing: int
    numbers: int = 0
    infinite: int = 0
    whole: bool = False
    mean: float = 0.0
    variance: float = 0.0
    median: float = 0.0
    odd: tuple[str, ...] = ()
    first: str = ""
    counts: dict[str, int] | None = None
    categories: bool = False
    dates: bool = False

    @property
    def numeric(self) -> bool:
        """Every present value is a number."""
        return 0 < self.present == self.numbers

    @property
    def distinct(self) -> int | float:
        """Distinct present values: math.inf beyond MAX_DISTINCT."""
        return math.inf if self.counts is None else len(self.counts)

    def distinct_text(self) -> str:
        return f"more than {MAX_DISTINCT}" if self.counts is None else str(len(self.counts))


def number_statistics(numbers: np.ndarray) -> dict[str, Any]:
    """The ColumnProfile fields of some numbers (float64), all held at once."""
    finite = numbers[np.isfinite(numbers)]
    return {"numbers": len(numbers), "infinite": len(numbers) - len(finite),
            "whole": bool(len(numbers) and (numbers == np.round(numbers)).all() and (numbers >= 0).all()),
            "mean": float(finite.mean()) if len(finite) else 0.0,
            "variance": float(finite.var()) if len(finite) else 0.0,
            "median": float(np.median(finite)) if len(finite) else 0.0}


def profile_values(values: pd.Series) -> ColumnProfile:
    """The profile of a column held in memory (as pandas.read_csv typed it, or as given)."""
    present = values.dropna()
    categories = bool(pd.api.types.is_bool_dtype(values) or isinstance(values.dtype, pd.CategoricalDtype)
                      # read_csv gives a boolean column with gaps as objects
                      or (values.dtype == object and len(present)
                          and present.map(lambda value: isinstance(value, (bool, np.bool_))).all()))
    found = present.value_counts(sort=False)
    counts = None
    if len(found) <= MAX_DISTINCT:
        counts = {}
        for text, count in zip(as_text(pd.Series(found.index.to_numpy(object), dtype=object)), found.to_numpy()):
            if count:  # a Categorical counts its unused categories too
                counts[text] = counts.get(text, 0) + int(count)
    profile = ColumnProfile(present=len(present), missing=len(values) - len(present), counts=counts,
                            first=as_text(present.iloc[:1]).iloc[0] if len(present) else "", categories=categories,
                            dates=pd.api.types.is_datetime64_any_dtype(values))
    if profile.categories or profile.dates:
        return profile
    parsed = pd.to_numeric(present, errors="coerce")
    odd = tuple(str(value) for value in present[parsed.isna()].unique()[:ODD_EXAMPLES])
    return replace(profile, odd=odd, **number_statistics(parsed.dropna().to_numpy(np.float64)))


def present_mask(values: np.ndarray) -> np.ndarray:
    """Which streamed values are present: text (an object array of str) not in NA_TEXT, numbers not NaN."""
    if values.dtype == object:
        return ~pd.Series(values, dtype=object).isin(NA_TEXT).to_numpy()
    return ~np.isnan(values)


class ProfileAccumulator:
    """One column's ColumnProfile from its values streamed a chunk at a time, in order (`add`): the fields of a CSV
    or bytes values of tf.Examples as text, float or int values as numbers. It decides as `profile_values` does on
    the column pandas.read_csv would read: a text of NA_TEXT is missing, a column of BOOLEAN_TEXT holds booleans,
    and a number's text in a category is `number_texts`'s.

    With `statistics`, also the numbers' moments (merged chunk by chunk) and their median: exact up to
    MEDIAN_SAMPLE numbers, beyond that the median of a uniform sample of MEDIAN_SAMPLE of them (those with the
    smallest random keys, drawn from seeds fixed by the chunk's place, so the same files give the same median).
    """

    def __init__(self, *, statistics: bool) -> None:
        self.statistics = statistics
        self.present = self.missing = self.numbers = self.infinite = self.chunks = 0
        self.whole = self.booleans = True
        self.first: str | float | None = None
        self.odd: dict[str, None] = {}  # an ordered set
        self.missing_texts: set[str] = set()  # the texts of NA_TEXT seen (a pipeline then checks for those alone)
        # Counts by the value as read (text or number): the merged counts first, then a chunk's each; None beyond
        # MAX_DISTINCT distinct values.
        self.counts: list[pd.Series] | None = []
        self.moments = (0, 0.0, 0.0)
        self.sample_keys, self.sample = np.empty(0), np.empty(0)
        self.pending: list[tuple[np.ndarray, np.ndarray]] = []
        self.threshold = 1.0  # keys at or above it can no longer enter the sample

    def add(self, values: np.ndarray) -> None:
        """The column's next values: text (an object array of str) or numbers (float64, NaN where missing)."""
        mask = present_mask(values)
        present = values[mask]
        self.missing += len(values) - len(present)
        if values.dtype == object and len(present) < len(values):
            self.missing_texts.update(values[~mask].tolist())
        if values.dtype != object:
            self.booleans = False
            self._add(pd.Series(present), present)
            return
        texts = pd.Series(present, dtype=object)
        parsed = pd.to_numeric(texts, errors="coerce")
        if len(self.odd) < ODD_EXAMPLES:
            self.odd.update(dict.fromkeys(texts[parsed.isna()].unique()[:ODD_EXAMPLES].tolist()))
        self.booleans = self.booleans and bool(texts.isin(BOOLEAN_TEXT).all())
        self._add(texts, parsed.dropna().to_numpy(np.float64))

    def _add(self, present: pd.Series, numbers: np.ndarray) -> None:
        if self.first is None and len(present):
            self.first = present.iloc[0]
        self.present += len(present)
        self.numbers += len(numbers)
        self.infinite += int(np.isinf(numbers).sum())
        self.whole = self.whole and bool((numbers == np.round(numbers)).all() and (numbers >= 0).all())
        if self.counts is not None and len(present):
            self.counts.append(present.value_counts(sort=False))
            if sum(map(len, self.counts)) > 2 * MAX_DISTINCT:  # merged when doubled: linear time in all
                self._merge_counts()
        if not self.statistics:
            return
        finite = numbers[np.isfinite(numbers)]
        if len(finite):
            mean = float(finite.mean())
            self.moments = merge_moments(self.moments, (len(finite), mean, float(((finite - mean) ** 2).sum())))
        self.chunks += 1
        keys = np.random.default_rng(self.chunks).random(len(finite))
        entering = keys < self.threshold
        self.pending.append((keys[entering], finite[entering]))
        if len(self.sample) + sum(len(keys) for keys, _ in self.pending) > 2 * MEDIAN_SAMPLE:
            self._shrink()

    def merge(self, other: ProfileAccumulator) -> None:
        """Add to the typing facts what `other` saw of the same column, before this one's values: the profile then
        types them all together, as `add` of every value in that order would. The statistics stay this one's."""
        self.present, self.missing = self.present + other.present, self.missing + other.missing
        self.numbers, self.infinite = self.numbers + other.numbers, self.infinite + other.infinite
        self.whole, self.booleans = self.whole and other.whole, self.booleans and other.booleans
        self.first = self.first if other.first is None else other.first
        self.odd = {**other.odd, **self.odd}
        self.missing_texts |= other.missing_texts
        self.counts = None if self.counts is None or other.counts is None else other.counts + self.counts
        self._merge_counts()

    def _merge_counts(self) -> None:
        if self.counts:
            merged = pd.concat(self.counts).groupby(level=0, sort=False).sum()
            # More distinct values than that: ID-like whatever else the column holds, no need to count on.
            self.counts = None if len(merged) > MAX_DISTINCT else [merged]

    def _shrink(self) -> None:
        """Fold the pending numbers into the sample, keeping the MEDIAN_SAMPLE with the smallest keys."""
        keys = np.concatenate([self.sample_keys, *(keys for keys, _ in self.pending)])
        values = np.concatenate([self.sample, *(values for _, values in self.pending)])
        self.pending = []
        if len(keys) > MEDIAN_SAMPLE:
            kept = np.argpartition(keys, MEDIAN_SAMPLE - 1)[:MEDIAN_SAMPLE]
            keys, values = keys[kept], values[kept]
            self.threshold = float(keys.max())
        self.sample_keys, self.sample = keys, values

    def profile(self, column: ProfileAccumulator | None = None) -> ColumnProfile:
        """The profile of the values added; `column`: the accumulator of the whole column when this one saw a part
        of it (the training rows), whose type then gives the texts of the values (pandas types a column whole)."""
        typed = column or self
        booleans = typed.booleans and typed.present > 0
        numeric = 0 < typed.present == typed.numbers

        def texts(values: np.ndarray) -> np.ndarray:
            if booleans:
                return np.array([BOOLEAN_TEXT[value] for value in values], dtype=object)
            return number_texts(values) if numeric else values.astype(str).astype(object)

        self._merge_counts()
        counts = None
        if self.counts is not None:
            found = self.counts[0] if self.counts else pd.Series(dtype=np.int64)
            by_text = found.groupby(texts(found.index.to_numpy(object)), sort=False).sum()
            counts = dict(zip(by_text.index.astype(str), by_text.to_numpy().tolist()))
        first = "" if self.first is None else str(texts(np.array([self.first], dtype=object))[0])
        profile = ColumnProfile(present=self.present, missing=self.missing, counts=counts, categories=booleans,
                                first=first)
        if booleans:
            return profile
        self._shrink()
        count, mean, squares = self.moments
        return replace(profile, numbers=self.numbers, infinite=self.infinite, whole=self.whole and self.numbers > 0,
                       mean=mean, variance=squares / count if count else 0.0,
                       median=float(np.median(self.sample)) if len(self.sample) else 0.0,
                       odd=tuple(self.odd)[:ODD_EXAMPLES])


def sorted_classes(profile: ColumnProfile) -> tuple[str, ...]:
    """The distinct values of a column with at most MAX_DISTINCT of them, as text, sorted as their values sort
    (numbers numerically, like numpy's unique and scikit-learn's `classes_`; others as text)."""
    texts = profile.counts or {}
    return tuple(sorted(texts, key=float) if profile.numeric else sorted(texts))


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
    own (an ID, a name; or one of more than MAX_DISTINCT values) is refused unless dropped, or declared categorical
    (then hashed). `task` None infers it from the target: text or booleans are classes, numbers with two values
    binary, whole numbers >= 0 with at most MAX_CLASSES values multiclass, other numbers regression. A 'binary'
    task whose target has more than two values is 'multiclass'. `positive_class` (binary only) is moved to
    `classes[1]`.
    """
    columns = [str(name) for name in frame.columns]
    profiles = {name: profile_values(frame.iloc[:, index]) for index, name in enumerate(columns)}
    return plan_table(columns, profiles, target, task=task, categorical=categorical, drop=drop,
                      positive_class=positive_class, where=where)


def plan_table(
    columns: Sequence[str],
    profiles: Mapping[str, ColumnProfile],
    target: str,
    *,
    task: str | None,
    categorical: Iterable[str],
    drop: Iterable[str],
    positive_class: str | None,
    where: str,
) -> TablePlan:
    """check_table's decisions from the profiles of the table's `columns` (in table order), wherever they came
    from: a frame in memory or streamed files."""
    categorical, drop = tuple(dict.fromkeys(categorical)), tuple(dict.fromkeys(drop))
    problems: list[str] = []
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
    for name in dict.fromkeys(columns):
        if name == target or name in drop:
            continue
        kind, problem = column_kind(profiles[name], name, declared_categorical=name in categorical)
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
    task, classes, problem = target_task(profiles[target], target, task, positive_class)
    if problem:
        problems.append(problem)
    if problems:
        counts = ", ".join(f"{name} {profiles[name].missing}" for name in dict.fromkeys(columns)
                           if profiles[name].missing)
        raise DataError(f"{where} cannot be trained on as it is:\n" + "\n".join(f"  - {p}" for p in problems)
                        + (f"\n  (missing values per column: {counts})" if counts else ""))
    return TablePlan(kinds, target, task, classes, drop)


def column_kind(profile: ColumnProfile, name: str, *, declared_categorical: bool) -> tuple[str, str | None]:
    """(kind, None) for a usable feature column, or ("", the problem) for one that cannot be used as it is."""
    if not profile.present:
        return "", f"column {name!r} has no values at all; leave it out with --drop {name}"
    id_like = profile.distinct >= max(ID_LIKE_MIN_VALUES, ID_LIKE_FRACTION * profile.present)
    if declared_categorical:
        return (HASHED if id_like else CATEGORICAL), None
    if profile.categories:
        return CATEGORICAL, None
    if profile.dates:
        return "", (f"column {name!r} holds dates; leave it out with --drop {name}, or turn it into numbers (the "
                    "year, the day of the week) in columns of their own")
    if profile.numeric:
        if profile.infinite:
            return "", f"column {name!r} holds infinite values in {profile.infinite} rows; replace them (e.g. with NaN)"
        return NUMERIC, None
    if profile.numbers >= MOSTLY_NUMERIC * profile.present:
        return "", (f"column {name!r} holds numbers but also {', '.join(map(repr, profile.odd))} in "
                    f"{profile.present - profile.numbers} rows; make those values empty (missing) or numbers, or "
                    f"declare the column categorical (--categorical {name})")
    if id_like:
        return "", (f"column {name!r} looks like an identifier or a name ({profile.distinct_text()} distinct values "
                    f"in {profile.present} rows): as a category it cannot generalise; leave it out with --drop "
                    f"{name}, or declare it categorical (--categorical {name}) to hash it")
    return CATEGORICAL, None


def target_task(profile: ColumnProfile, target: str, task: str | None,
                positive_class: str | None) -> tuple[str, tuple[str, ...], str | None]:
    """(task, classes, problem or None) for the target column; see check_table."""
    if not profile.present:
        return task or "regression", (), f"target {target!r} has no values; pick another --target"
    numeric = profile.numeric
    if task is None:
        if not numeric or profile.distinct == 2 or (profile.whole and profile.distinct <= MAX_CLASSES):
            task = "binary" if profile.distinct == 2 else "multiclass"
        else:
            task = "regression"
    if task not in TASKS:
        return task, (), f"task must be one of {', '.join(TASKS)}, got {task!r}"
    if task == "regression":
        if not numeric:
            return task, (), (f"target {target!r} holds text (e.g. {profile.first!r}); a regression model needs "
                              "numbers: pick a classification model (logistic_regression, binary_mlp) for labels")
        if profile.infinite:
            return task, (), f"target {target!r} holds infinite values; replace or drop those rows"
        return task, (), None
    if profile.distinct > MAX_CLASSES:
        return task, (), (f"target {target!r} has {profile.distinct_text()} distinct values, too many for classes "
                          f"(at most {MAX_CLASSES}); to predict a number use a regression model (linear_regression)")
    classes = sorted_classes(profile)
    if len(classes) < 2:
        return task, classes, (f"target {target!r} holds one value ({classes[0]!r}); a classifier needs at least "
                               "two classes")
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
    return fitted_schema(plan, {name: profile_values(train[name]) for name in (*plan.kinds, plan.target)})


def fitted_schema(plan: TablePlan, profiles: Mapping[str, ColumnProfile]) -> TableSchema:
    """The schema of `plan` with the statistics of the training rows' profiles (of every kept column and the
    target), wherever they came from."""
    columns = tuple(fit_column(name, kind, profiles[name]) for name, kind in plan.kinds.items())
    schema = TableSchema(columns, plan.target, plan.task, plan.classes, dropped=plan.dropped)
    if plan.task == "regression":
        target = profiles[plan.target]
        schema = replace(schema, target_mean=target.mean, target_variance=max(target.variance, 1e-12))
    return schema


def fit_column(name: str, kind: str, profile: ColumnProfile) -> Column:
    """One column's training statistics (see Column) from the training rows' profile."""
    column = Column(name=name, input=input_name(name), kind=kind)
    if kind == NUMERIC:
        median = profile.median if profile.numbers else 0.0
        # The moments of the imputed values: the missing ones all take the median.
        count, mean, squares = merge_moments((profile.numbers, profile.mean, profile.variance * profile.numbers),
                                             (profile.missing, median, 0.0))
        return replace(column, median=median, mean=mean, variance=squares / count if count else 0.0,
                       missing=profile.missing > 0)
    if kind == HASHED:
        return replace(column, bins=HASH_BINS)
    counts = profile.counts or {}
    frequent = sorted((-n, value) for value, n in counts.items() if value != MISSING_TOKEN)[:MAX_VOCABULARY]
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
