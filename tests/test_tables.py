"""Users' own tables as they come (tfzoo.tables): typing and one message for every problem, preprocessing learned on
the training split and kept inside the model, labels of any kind, and the table served by column name.

The real tables are vega_datasets' `cars` (miles per gallon with missing values, an Origin category, a Name to
drop) and `seattle-weather` (five weather classes), shipped inside that registry package (BSD-3-Clause).
"""
from __future__ import annotations

import json
import subprocess
import sys
import urllib.request
from pathlib import Path

import keras
import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import r2_score
from vega_datasets import data as vega

import tfzoo
from tfzoo.datasets import DataError, load_csv
from tfzoo.serving.client import Client
from tfzoo.serving.server import server_process
from tfzoo.tables import TableSchema, check_table, model_inputs, table_schema

CARS_TARGET = "Miles_per_Gallon"


@pytest.fixture(scope="module")
def cars_csv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("cars") / "cars.csv"
    vega.cars().to_csv(path, index=False)  # as a user has it: Year is a date string, 8 cars lack their MPG
    return path


@pytest.fixture(scope="module")
def weather_csv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("weather") / "weather.csv"
    vega.seattle_weather().to_csv(path, index=False)
    return path


def write(path: Path, frame: pd.DataFrame) -> Path:
    frame.to_csv(path, index=False)
    return path


# --- typing, and every problem in one message -----------------------------------------------------------------

def test_cars_is_typed_and_its_name_column_refused_with_the_fix(cars_csv):
    with pytest.raises(DataError) as error:
        load_csv(cars_csv, CARS_TARGET, task="regression")
    message = str(error.value)
    assert "column 'Name' looks like an identifier" in message and "--drop Name" in message
    assert "Miles_per_Gallon 8" in message and "Horsepower 6" in message  # missing values per column, counted

    data = load_csv(cars_csv, CARS_TARGET, task="regression", drop=["Name"])
    kinds = {column.name: column.kind for column in data.schema.columns}
    assert kinds == {"Cylinders": "numeric", "Displacement": "numeric", "Horsepower": "numeric",
                     "Weight_in_lbs": "numeric", "Acceleration": "numeric", "Year": "categorical",
                     "Origin": "categorical"}
    assert [c.name for c in data.schema.columns if c.missing] == ["Horsepower"]
    assert sum(data.num_examples(split) for split in ("train", "validation", "test")) == 406 - 8
    assert "8 without a target left out" in data.description


def test_every_problem_of_a_table_is_reported_at_once(tmp_path):
    rows = 60
    frame = pd.DataFrame({
        "customer_id": [f"C{i:04d}" for i in range(rows)],  # an identifier
        "income": [str(1000 + i) if i % 10 else "?" for i in range(rows)],  # numbers with a placeholder
        "empty": [np.nan] * rows,
        "ratio": [np.inf if i == 3 else 0.5 for i in range(rows)],
        "label": ["yes"] * rows,  # one class
    })
    with pytest.raises(DataError) as error:
        load_csv(write(tmp_path / "bad.csv", frame), "label", task="binary", drop=["nope"], categorical=["gone"])
    message = str(error.value)
    for expected in ("column 'customer_id' looks like an identifier", "--drop customer_id",
                     "column 'income' holds numbers but also '?' in 6 rows", "--categorical income",
                     "column 'empty' has no values at all", "column 'ratio' holds infinite values in 1 rows",
                     "--drop names 'nope', not a column", "--categorical names 'gone', not a column",
                     "target 'label' holds one value ('yes')", "empty 60"):
        assert expected in message, expected


@pytest.mark.parametrize("column, task, expected", [
    (["a", "b"] * 30, "regression", "holds text"),
    (list(range(120)) * 2, "binary", "120 distinct values, too many for classes"),
])
def test_target_that_does_not_fit_the_task_says_which_model_to_use(tmp_path, column, task, expected):
    frame = pd.DataFrame({"x": np.arange(len(column), dtype=float) * 0.5, "y": column})
    with pytest.raises(DataError, match=expected) as error:
        load_csv(write(tmp_path / "t.csv", frame), "y", task=task)
    assert "regression" in str(error.value) or "logistic_regression" in str(error.value)


@pytest.mark.slow
def test_bad_table_from_the_cli_exits_2_and_writes_no_run_dir(tmp_path, cars_csv):
    run_dir = tmp_path / "run"
    result = subprocess.run([sys.executable, "-m", "tfzoo", "train", "linear_regression", "--csv", str(cars_csv),
                             "--target", CARS_TARGET, "--run-dir", str(run_dir)], capture_output=True, text=True)
    assert result.returncode == 2
    assert "--drop Name" in result.stderr and "Traceback" not in result.stderr
    assert not run_dir.exists()


def test_declared_categorical_integer_and_hashed_identifier(tmp_path):
    rng = np.random.default_rng(0)
    frame = pd.DataFrame({"code": rng.integers(0, 4, 200), "user": [f"u{i}" for i in range(200)],
                          "x": rng.normal(size=200), "y": rng.integers(0, 2, 200)})
    data = load_csv(write(tmp_path / "c.csv", frame), "y", task="binary", categorical=["code", "user"])
    kinds = {column.name: (column.kind, column.width) for column in data.schema.columns}
    assert kinds["code"] == ("categorical", 6)  # missing token + 4 codes + out-of-vocabulary, one-hot
    assert kinds["user"][0] == "hashed" and kinds["x"] == ("numeric", 1)
    assert data.x_train["code"].dtype == object and set(data.x_train["code"]) <= {"0", "1", "2", "3"}


# --- statistics from the training split only ---------------------------------------------------------------

def test_statistics_come_from_the_training_rows_only(tmp_path):
    frame = pd.DataFrame({"x": np.arange(100, dtype=float), "y": [0, 1] * 50})
    data = load_csv(write(tmp_path / "s.csv", frame), "y", task="binary", seed=4)
    train = data.x_train["x"]
    (column,) = data.schema.columns
    assert column.median == float(np.median(train)) and column.mean == pytest.approx(float(train.mean()))
    everything = np.arange(100, dtype=float)
    assert column.mean != pytest.approx(everything.mean())  # the held-out rows did not count


# --- labels as they come -----------------------------------------------------------------------------------

def test_string_labels_positive_class_and_classes_order(tmp_path):
    frame = pd.DataFrame({"x": np.linspace(0, 1, 60), "answer": ["Yes", "No", "No"] * 20})
    path = write(tmp_path / "l.csv", frame)
    data = load_csv(path, "answer", task="binary")
    assert data.schema.classes == ("No", "Yes") and data.schema.positive_class == "Yes"
    np.testing.assert_array_equal(data.schema.encode_labels(["No", "Yes"]), [[0.0], [1.0]])
    flipped = load_csv(path, "answer", task="binary", positive_class="No")
    assert flipped.schema.classes == ("Yes", "No")
    np.testing.assert_array_equal(flipped.schema.encode_labels(["No", "Yes"]), [[1.0], [0.0]])
    with pytest.raises(DataError, match="--positive-class 'Maybe' is not a value of 'answer'"):
        load_csv(path, "answer", task="binary", positive_class="Maybe")


def test_numeric_classes_sort_as_numbers(tmp_path):
    frame = pd.DataFrame({"x": np.linspace(0, 1, 60), "grade": [2, 10, 1] * 20})
    data = load_csv(write(tmp_path / "g.csv", frame), "grade", task="binary")
    assert data.task == "multiclass" and data.schema.classes == ("1", "2", "10") and data.num_classes == 3


@pytest.mark.slow
@pytest.mark.parametrize("model", ["binary_mlp", "logistic_regression"])
def test_several_classes_train_as_multiclass_on_the_binary_models(tmp_path, weather_csv, model):
    data = load_csv(weather_csv, "weather", task="binary", drop=["date"])
    result = tfzoo.train(model, dataset=data, epochs=2, run_dir=tmp_path / "run", verbose=0)
    config = json.loads((result.run_dir / "config.json").read_text())
    assert config["task"] == "multiclass" and config["hparams"]["num_classes"] == 5
    assert config["table"]["classes"] == ["drizzle", "fog", "rain", "snow", "sun"]
    probabilities = result.model.predict(model_inputs(vega.seattle_weather().head(4), data.schema), verbose=0)
    assert probabilities.shape == (4, 5) and np.allclose(probabilities.sum(axis=1), 1.0, atol=1e-5)
    assert result.history["loss"][1] < result.history["loss"][0]
    reloaded = keras.saving.load_model(result.run_dir / "model.keras")  # with its trained optimizer state
    assert [v.shape for v in reloaded.optimizer.variables] == [v.shape for v in result.model.optimizer.variables]
    last_slot = [optimizer.variables[-1].numpy() for optimizer in (reloaded.optimizer, result.model.optimizer)]
    np.testing.assert_array_equal(*last_slot)


# --- regression whatever the target's scale ------------------------------------------------------------------

@pytest.mark.slow
def test_regression_trains_in_the_targets_own_units_whatever_its_scale(tmp_path, cars_csv):
    frame = pd.read_csv(cars_csv)
    scores = []
    for scale in (1.0, 10_000.0):
        scaled = frame.assign(**{CARS_TARGET: frame[CARS_TARGET] * scale})
        data = load_csv(write(tmp_path / f"cars{scale:g}.csv", scaled), CARS_TARGET, task="regression",
                        drop=["Name"])
        result = tfzoo.train("linear_regression", dataset=data, epochs=40, run_dir=tmp_path / f"run{scale:g}",
                             verbose=0)
        predictions = result.model.predict(data.x_test, verbose=0)[:, 0]
        assert abs(np.median(predictions) / scale - 23) < 6  # miles per gallon, in the target's units
        scores.append(r2_score(data.y_test[:, 0], predictions))
    assert min(scores) > 0.7 and abs(scores[0] - scores[1]) < 0.02


# --- saved, exported, served by column name -----------------------------------------------------------------

@pytest.fixture(scope="module")
def cars_export(tmp_path_factory: pytest.TempPathFactory, cars_csv: Path) -> tuple[Path, tfzoo.TrainResult]:
    root = tmp_path_factory.mktemp("cars_export")
    data = load_csv(cars_csv, CARS_TARGET, task="regression", drop=["Name"])
    result = tfzoo.train("linear_regression", dataset=data, epochs=3, run_dir=root / "run", verbose=0)
    return tfzoo.export(result.run_dir, root / "models", name="cars"), result


@pytest.mark.slow
def test_schema_is_recorded_in_the_model_config_and_export(cars_export):
    version, result = cars_export
    config = json.loads((result.run_dir / "config.json").read_text())
    exported = json.loads((version / "assets.extra" / "tfzoo.json").read_text())
    reloaded = keras.saving.load_model(result.run_dir / "model.keras")
    assert TableSchema.from_json(config["table"]) == table_schema(reloaded) == table_schema(result.model)
    assert exported["table"] == config["table"] and exported["table"]["task"] == "regression"
    assert set(exported["signatures"]["serving_default"]["inputs"]) == {c.input for c in table_schema(reloaded).columns}
    assert exported["signatures"]["serving_default"]["inputs"]["Origin"] == {"dtype": "string", "shape": [None]}
    assert "regress" in exported["signatures"]


@pytest.mark.slow
def test_served_table_agrees_with_the_model_on_every_api(cars_export):
    version, result = cars_export
    schema = table_schema(result.model)
    rows = vega.cars().head(5).drop(columns=["Name"]).assign(Year=lambda f: f["Year"].dt.strftime("%Y-%m-%d"))
    rows.loc[1, "Horsepower"] = np.nan  # missing at serving: the training median stands in
    expected = result.model.predict(model_inputs(rows, schema), verbose=0)[:, 0]
    # The model sees the missing value as the training median plus its missing indicator (training had gaps there).
    encode = result.model.get_layer("table_features")
    gap = encode(model_inputs(rows.iloc[[1]], schema)).numpy()
    median = encode(model_inputs(rows.iloc[[1]].assign(Horsepower=schema.column("Horsepower").median), schema)).numpy()
    numeric = sum(column.kind == "numeric" for column in schema.columns)  # Horsepower's indicator follows them
    np.testing.assert_array_equal(np.flatnonzero(gap != median), [numeric])
    assert (gap - median).max() == 1.0

    instances = [{key: (None if pd.isna(value) else value) for key, value in row.items() if key != CARS_TARGET}
                 for row in rows.to_dict("records")]
    examples = [{key: float(value) if isinstance(value, (int, float)) else value
                 for key, value in row.items() if value is not None} for row in instances]
    for instance in instances:
        if instance["Horsepower"] is None:
            instance["Horsepower"] = float("nan")  # TF Serving's JSON takes NaN for a float
    with server_process(f"--model_base_path={version.parent}", "--model_name=cars") as (rest_port, grpc_port):
        body = json.dumps({"instances": instances}).encode()
        request = urllib.request.Request(f"http://127.0.0.1:{rest_port}/v1/models/cars:predict", data=body)
        with urllib.request.urlopen(request, timeout=60) as response:
            rest_rows = np.array(json.loads(response.read())["predictions"], dtype=np.float32)[:, 0]
        inputs = model_inputs(rows, schema)
        with Client("127.0.0.1", rest_port) as rest, Client("127.0.0.1", grpc_port, protocol="grpc") as grpc_client:
            columnar = rest.predict("cars", inputs)["prediction"][:, 0]
            over_grpc = grpc_client.predict("cars", inputs)["prediction"][:, 0]
            regress_rest = rest.regress("cars", examples, signature="regress")
            regress_grpc = grpc_client.regress("cars", examples, signature="regress")
    for served in (rest_rows, columnar, over_grpc, np.ravel(regress_rest), np.ravel(regress_grpc)):
        np.testing.assert_allclose(served, expected, atol=1e-5)


@pytest.mark.slow
def test_served_classifier_answers_labels_and_classify(tmp_path, weather_csv):
    data = load_csv(weather_csv, "weather", task="binary", drop=["date"])
    result = tfzoo.train("logistic_regression", dataset=data, epochs=2, run_dir=tmp_path / "run", verbose=0)
    version = tfzoo.export(result.run_dir, tmp_path / "models", name="weather")
    rows = vega.seattle_weather().head(4).drop(columns=["date", "weather"])
    expected = result.model.predict(model_inputs(rows, data.schema), verbose=0)
    examples = [{key: float(value) for key, value in row.items()} for row in rows.to_dict("records")]
    with server_process(f"--model_base_path={version.parent}", "--model_name=weather") as (rest_port, grpc_port):
        with Client("127.0.0.1", rest_port) as rest, Client("127.0.0.1", grpc_port, protocol="grpc") as grpc_client:
            predicted = rest.predict("weather", model_inputs(rows, data.schema))
            classified = [grpc_client.classify("weather", examples, signature="classify"),
                          rest.classify("weather", examples, signature="classify")]
    np.testing.assert_allclose(predicted["probabilities"], expected, atol=1e-5)
    labels = [label.decode() if isinstance(label, bytes) else label for label in predicted["label"]]
    assert labels == [data.schema.classes[i] for i in expected.argmax(axis=1)]
    for answer in classified:
        assert [[name for name, _ in result_row] for result_row in answer] == [list(data.schema.classes)] * 4
        np.testing.assert_allclose([[score for _, score in row] for row in answer], expected, atol=1e-5)


def test_tables_train_long_enough_to_converge():
    from tfzoo.training.trainer import MAX_TABLE_EPOCHS, MIN_TABLE_STEPS, table_schedule

    epochs, patience = table_schedule(20, steps=9)  # cars: 9 batches an epoch
    assert epochs * 9 >= MIN_TABLE_STEPS and epochs - 1 < MIN_TABLE_STEPS / 9 and patience == epochs // 10
    assert table_schedule(50, steps=500) == (50, 10)  # a large table keeps the model's own epochs
    assert table_schedule(20, steps=1)[0] == MAX_TABLE_EPOCHS


def test_splits_print_a_summary_not_their_arrays(cars_csv):
    data = load_csv(cars_csv, CARS_TARGET, task="regression", drop=["Name"])
    text = repr(data)
    assert len(text) < 600 and "array" not in text
    assert "regression" in text and "Origin" in text and str(data.num_examples("train")) in text


def test_check_table_infers_the_task_from_the_target():
    frame = pd.DataFrame({"x": np.arange(40.0), "flag": [True, False] * 20, "price": np.linspace(1, 9, 40),
                          "kind": ["a", "b", "c", "d"] * 10})
    assert check_table(frame, "flag").task == "binary"
    assert check_table(frame, "price").task == "regression"
    assert check_table(frame, "kind").task == "multiclass"
