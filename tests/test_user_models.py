"""A data scientist's own models through the same path as the zoo's (issue 11), with real processes throughout.

`tfzoo.export_model` takes any Keras model the user built and trained: the export validates in a fresh process from
the version folder alone, and `tfzoo serve` answers like the trained model over REST and gRPC. A factory defined
outside the package is found by the CLI through the `tfzoo.models` entry point of tests/user_plugin/ (on PYTHONPATH
of the subprocesses only, so this process's registry never holds it), and by the Python API once the user's module
is imported.
"""
from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import keras
import numpy as np
import pytest

import tfzoo
from tfzoo.export.warmup import REFERENCE_FILE, read_logs, write_reference
from tfzoo.serving.client import Client
from tfzoo.serving.config import write_serving_configs
from tfzoo.serving.layout import ASSETS_EXTRA
from tfzoo.serving.server import server_process

pytestmark = pytest.mark.slow  # real processes throughout: trainings, exports, validations, a server

PLUGIN_DIR = Path(__file__).resolve().parent / "user_plugin"  # user_models.py and user_models-0.1.dist-info/
MATCHES_LINE = re.compile(r"^\s+(ok|FAIL)\s+matches the trained model:", re.M)


def start_tfzoo(*args: str | Path, path: tuple[Path, ...] = ()) -> subprocess.Popen:
    """`tfzoo ARGS...` started in a subprocess with the folders of `path` first on PYTHONPATH."""
    pythonpath = [*map(str, path), *filter(None, [os.environ.get("PYTHONPATH")])]
    return subprocess.Popen([sys.executable, "-m", "tfzoo", *map(str, args)], text=True, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, env={**os.environ, "PYTHONPATH": os.pathsep.join(pythonpath)})


def finish(process: subprocess.Popen) -> subprocess.CompletedProcess:
    """Wait for a started process; its exit status and output."""
    stdout, stderr = process.communicate(timeout=300)
    return subprocess.CompletedProcess(process.args, process.returncode, stdout, stderr)


def tfzoo_cli(*args: str | Path, path: tuple[Path, ...] = ()) -> subprocess.CompletedProcess:
    """`tfzoo ARGS...` run in a subprocess with the folders of `path` first on PYTHONPATH."""
    return finish(start_tfzoo(*args, path=path))


def people_data(seed: int, count: int) -> dict[str, np.ndarray]:
    """Made-up inputs of the two-input model: ages [N, 3] and incomes [N, 2]."""
    rng = np.random.default_rng(seed)
    return {"age": rng.normal(size=(count, 3)).astype(np.float32),
            "income": rng.normal(size=(count, 2)).astype(np.float32)}


class Pair(keras.Model):
    """A subclassed model: call takes {"left", "right"} and returns one unnamed tensor."""

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.hidden = keras.layers.Dense(4, activation="tanh")
        self.out = keras.layers.Dense(2)

    def call(self, inputs):
        return self.out(self.hidden(keras.ops.concatenate([inputs["left"], inputs["right"]], axis=-1)))


def pair_data(seed: int, count: int) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    return {"left": rng.normal(size=(count, 2)).astype(np.float32),
            "right": rng.normal(size=(count, 3)).astype(np.float32)}


def people_model() -> tuple[keras.Model, dict]:
    """A user's two-input functional model with named outputs, trained for 2 epochs; its export_model options."""
    keras.utils.set_random_seed(0)
    age, income = keras.Input((3,), name="age"), keras.Input((2,), name="income")
    hidden = keras.layers.Dense(8, activation="relu")(keras.layers.Concatenate()([age, income]))
    model = keras.Model({"age": age, "income": income},
                        {"score": keras.layers.Dense(1, name="score")(hidden),
                         "label": keras.layers.Dense(3, activation="softmax", name="label")(hidden)}, name="people")
    model.compile("adam", loss={"score": "mse", "label": "sparse_categorical_crossentropy"})
    x = people_data(seed=0, count=64)
    y = {"score": x["age"].sum(axis=1, keepdims=True) - x["income"][:, :1],
         "label": (x["age"][:, 0] > 0).astype(np.int64) + (x["income"][:, 1] > 0)}
    model.fit(x, y, epochs=2, batch_size=16, verbose=0)
    return model, {"examples": x}


def pair_model() -> tuple[keras.Model, dict]:
    """The subclassed model trained for 2 epochs; exported with examples by input name."""
    keras.utils.set_random_seed(0)
    model = Pair(name="pair")
    model.compile("adam", loss="mse")
    x = pair_data(seed=0, count=32)
    model.fit(x, x["left"] - x["right"][:, :2], epochs=2, batch_size=8, verbose=0)
    return model, {"examples": x}


def churn_model() -> tuple[keras.Model, dict]:
    """A one-input functional binary classifier trained for 2 epochs; exported with task="binary"."""
    keras.utils.set_random_seed(0)
    usage = keras.Input((4,), name="usage")
    model = keras.Model(usage, keras.layers.Dense(1, activation="sigmoid")(usage), name="churn")
    model.compile("adam", loss="binary_crossentropy")
    x = np.random.default_rng(0).normal(size=(40, 4)).astype(np.float32)
    model.fit(x, (x[:, 0] > 0).astype(np.float32), epochs=2, batch_size=8, verbose=0)
    return model, {"examples": x, "task": "binary"}


def write_table(path: Path, rows: int = 120) -> Path:
    """A small CSV of three numeric features and a 0/1 label."""
    rng = np.random.default_rng(3)
    features = rng.normal(size=(rows, 3)).round(3)
    label = (features[:, 0] + features[:, 1] > 0).astype(int)
    lines = ["a,b,c,label"] + [f"{a},{b},{c},{y}" for (a, b, c), y in zip(features, label)]
    path.write_text("\n".join(lines) + "\n")
    return path


NEW_ROWS = np.random.default_rng(4).normal(size=(5, 3)).round(3).astype(np.float32)  # rows not in the CSV

# A data scientist's own Python session: the module imported (user_mlp registered in this process alone, with no
# entry point anywhere), the CLI's run loaded (its FeatureGain layer needs the module), then train and export.
USER_SESSION = """
import json, sys
import keras, numpy as np
import tfzoo
import user_models
from tfzoo.datasets import load_csv

csv, cli_run, new_rows, run_dir, model_base = sys.argv[1:]
cli_model = keras.saving.load_model(cli_run + "/model.keras")
rows = np.asarray(json.loads(new_rows), np.float32)  # a table model takes its columns by name
columns = {name: rows[:, i] for i, name in enumerate("abc")}
print("predicted:", json.dumps(cli_model.predict(columns, verbose=0).tolist()))
result = tfzoo.train("user_mlp", dataset=load_csv(csv, "label", task="binary"), epochs=2, run_dir=run_dir, verbose=0)
print("exported:", tfzoo.export(result, model_base))
"""


@dataclass
class Published:
    """What the user made and where it went."""

    model_base: Path  # what `tfzoo serve` serves
    models: dict[str, tuple[keras.Model, Path]]  # people, pair, churn: the trained model, its version folder
    cli_export: subprocess.CompletedProcess  # `tfzoo export` of user_mlp trained by `tfzoo train` (the plug-in's)
    session: subprocess.CompletedProcess  # USER_SESSION, run beside a copy of user_models.py alone
    session_base: Path  # where the session exported


@pytest.fixture(scope="module")
def published(tmp_path_factory) -> Published:
    """Every export of this file. Each new process spends seconds importing TensorFlow, so they overlap: the CLI
    trains the plug-in's model while this process trains and exports its own, and the CLI export runs beside the
    user's session."""
    root = tmp_path_factory.mktemp("user")
    model_base, csv, cli_run, session_dir = root / "models", write_table(root / "table.csv"), root / "run", root / "me"
    with start_tfzoo("train", "user_mlp", "--csv", csv, "--target", "label", "--epochs", "2", "--run-dir", cli_run,
                     path=(PLUGIN_DIR,)) as training:
        models = {}
        for name, build in [("people", people_model), ("pair", pair_model), ("churn", churn_model)]:
            model, options = build()
            models[name] = model, tfzoo.export_model(model, model_base, name=name, **options)
        trained = finish(training)
    assert trained.returncode == 0, trained.stderr[-3000:]

    session_dir.mkdir()
    shutil.copy(PLUGIN_DIR / "user_models.py", session_dir)  # the module alone, importable from its folder
    with start_tfzoo("export", cli_run, "--model-base", model_base, path=(PLUGIN_DIR,)) as exporting:
        session = subprocess.run([sys.executable, "-c", USER_SESSION, str(csv), str(cli_run),
                                  json.dumps(NEW_ROWS.tolist()), str(session_dir / "run"), str(session_dir / "models")],
                                 capture_output=True, text=True, timeout=300, cwd=session_dir)
        cli_export = finish(exporting)
    return Published(model_base, models, cli_export, session, session_dir / "models")


@pytest.fixture(scope="module")
def clients(published, tmp_path_factory):
    """`tfzoo serve` (a subprocess without the plug-in) on the model base: its REST and gRPC clients."""
    config = write_serving_configs(published.model_base, tmp_path_factory.mktemp("config"))["models.config"]
    with server_process(f"--model_config_file={config}") as (rest_port, grpc_port):
        with Client("127.0.0.1", grpc_port, protocol="grpc") as grpc:
            yield [Client("127.0.0.1", rest_port, protocol="rest"), grpc]


# ------------------------------------------------------------------------------ export_model: any Keras model

def test_two_input_model_serves_its_own_names_and_predictions(published, clients):
    model, _ = published.models["people"]
    x = people_data(seed=1, count=5)  # new inputs, not the examples the export recorded
    expected = model.predict(x, verbose=0)
    for client in clients:
        signature = client.metadata("people")["serving_default"]
        float32 = np.dtype(np.float32)
        assert signature.inputs == {"age": (float32, (None, 3)), "income": (float32, (None, 2))}
        assert signature.outputs == {"score": (float32, (None, 1)), "label": (float32, (None, 3))}
        served = client.predict("people", x)
        assert set(served) == {"score", "label"}
        for name in ("score", "label"):
            np.testing.assert_allclose(served[name], expected[name], atol=1e-5, err_msg=f"{client.protocol} {name}")


def test_a_copied_version_validates_alone_in_a_fresh_process(published, tmp_path):
    _, version_dir = published.models["people"]
    copied = tmp_path / "elsewhere" / "people" / "1"
    shutil.copytree(version_dir, copied)
    validated = tfzoo_cli("validate", copied)  # a new process that sees only the copied folder
    assert validated.returncode == 0, validated.stdout + validated.stderr[-3000:]
    assert MATCHES_LINE.search(validated.stdout).group(1) == "ok"


def test_exporting_the_same_model_again_returns_its_version(published, capsys):
    model, version_dir = published.models["people"]
    again = tfzoo.export_model(model, published.model_base, name="people", examples=people_data(seed=0, count=64))
    assert again == version_dir and "already holds this export" in capsys.readouterr().out
    assert sorted(path.name for path in version_dir.parent.iterdir()) == ["1"]  # nothing new, nothing staged


def test_a_tampered_reference_fails_validation_on_the_comparison_alone(published, tmp_path):
    _, version_dir = published.models["people"]
    tampered = tmp_path / "people" / "1"
    shutil.copytree(version_dir, tampered)
    reference = tampered / ASSETS_EXTRA / REFERENCE_FILE
    records = read_logs(reference)
    write_reference(reference, "people", [(signature, inputs) for signature, inputs, _ in records],
                    [{name: value + 0.01 for name, value in outputs.items()} for _, _, outputs in records])

    report = tfzoo.validate(tampered).render()

    failed = [line for line in report.splitlines() if line.lstrip().startswith("FAIL")]
    assert len(failed) == 1 and MATCHES_LINE.match(failed[0]).group(1) == "FAIL", report
    assert "max |served - trained| = 1.00e-02" in failed[0]
    # Every record was compared and differs: the line must not say there were none.
    assert "no recorded requests" not in failed[0], failed[0]


def test_subclassed_model_serves_its_one_unnamed_output_as_outputs(published, clients):
    model, _ = published.models["pair"]
    x = pair_data(seed=1, count=3)
    expected = model.predict(x, verbose=0)
    for client in clients:
        signature = client.metadata("pair")["serving_default"]
        assert set(signature.inputs) == {"left", "right"} and set(signature.outputs) == {"outputs"}
        np.testing.assert_allclose(client.predict("pair", x)["outputs"], expected, atol=1e-5,
                                   err_msg=client.protocol)


def test_task_binary_serves_probability_and_class_id(published, clients):
    model, _ = published.models["churn"]
    x = np.random.default_rng(1).normal(size=(6, 4)).astype(np.float32)
    expected = model.predict(x, verbose=0)
    for client in clients:
        assert set(client.metadata("churn")["serving_default"].inputs) == {"usage"}
        served = client.predict("churn", {"usage": x})
        assert set(served) == {"probability", "class_id"}
        np.testing.assert_allclose(served["probability"], expected, atol=1e-5, err_msg=client.protocol)
        np.testing.assert_array_equal(served["class_id"], (expected[:, 0] > 0.5).astype(np.int64))


@pytest.mark.parametrize("change, error, message", [
    ({"examples": {"age": np.zeros((2, 3), np.float32), "salary": np.zeros((2, 2), np.float32)}}, ValueError,
     "examples name the inputs ['age', 'salary'] but the model's inputs are"),
    ({"examples": np.zeros((2, 3), np.float32)}, ValueError, "examples must be {input name: array}"),
    ({"examples": {"age": np.zeros((2, 3), np.float32), "income": np.zeros((3, 2), np.float32)}}, ValueError,
     "every input's examples must hold the same number"),
    # The next two name the input whose examples do not fit it.
    ({"examples": {"age": np.zeros((2, 4), np.float32), "income": np.zeros((2, 2), np.float32)}}, ValueError,
     "'age'"),
    ({"examples": {"age": np.full((2, 3), "old"), "income": np.zeros((2, 2), np.float32)}}, ValueError, "'age'"),
    ({"model": "people.keras"}, TypeError, "export_model takes a keras.Model, got str"),
    ({"name": "my people"}, ValueError, "model name 'my people' must be letters, digits"),
    ({"name": "../people"}, ValueError, "model name '../people' must be letters, digits"),
    ({"task": "ranking"}, ValueError, "unknown task 'ranking'; known tasks: binary"),
    ({"version": 0}, ValueError, "version must be a positive integer"),
])
def test_bad_input_is_one_clear_error_and_leaves_nothing(published, tmp_path, change, error, message):
    model, _ = published.models["people"]
    model_base = tmp_path / "models"
    arguments = {"model": model, "examples": people_data(seed=2, count=4), "name": "people", **change}
    with pytest.raises(error) as raised:
        tfzoo.export_model(arguments.pop("model"), model_base, **arguments)
    assert message in str(raised.value) and "\n" not in str(raised.value), str(raised.value)
    assert list(tmp_path.rglob("*")) == []  # no model folder, version or staging folder, even beside the base


# -------------------------------------------------------------------------- a factory outside the package

def test_the_cli_lists_a_plugin_and_names_a_broken_one(tmp_path):
    (tmp_path / "broken_plugin.py").write_text("raise RuntimeError('this plug-in cannot be imported')\n")
    dist_info = tmp_path / "broken_plugin-0.1.dist-info"
    dist_info.mkdir()
    (dist_info / "METADATA").write_text("Metadata-Version: 2.1\nName: broken-plugin\nVersion: 0.1\n")
    (dist_info / "entry_points.txt").write_text("[tfzoo.models]\nbroken = broken_plugin\n")

    # Both at once: two processes that each import TensorFlow.
    listed, broken = map(finish, [start_tfzoo("list", path=(PLUGIN_DIR,)),
                                  start_tfzoo("list", path=(tmp_path, PLUGIN_DIR))])

    assert listed.returncode == 0, listed.stderr[-3000:]
    assert re.search(r"^user_mlp +binary +synthetic_binary +A user's binary classifier", listed.stdout, re.M)
    assert "user_mlp" not in tfzoo.list_models()  # this process has no plug-in: the subprocess found it
    assert broken.returncode == 2 and broken.stdout == ""
    errors = [line for line in broken.stderr.splitlines() if line.startswith("tfzoo list: error:")]
    assert len(errors) == 1 and "Traceback" not in broken.stderr, broken.stderr[-3000:]
    assert "entry point broken = broken_plugin (from broken-plugin)" in errors[0]
    assert "RuntimeError: this plug-in cannot be imported" in errors[0]


def test_plugin_run_exports_validates_without_the_plugin_and_serves_its_own_predictions(published, clients):
    exported = published.cli_export
    version_dir = published.model_base / "user_mlp" / "1"
    assert exported.returncode == 0, exported.stdout + exported.stderr[-3000:]
    assert exported.stdout.splitlines()[-1] == str(version_dir)
    validated = tfzoo_cli("validate", version_dir)  # no plug-in on the path: the version folder alone
    assert validated.returncode == 0, validated.stdout + validated.stderr[-3000:]
    assert MATCHES_LINE.search(validated.stdout).group(1) == "ok"

    session = published.session  # the CLI run's model loaded with the plug-in's classes, on NEW_ROWS
    assert session.returncode == 0, session.stdout + session.stderr[-3000:]
    expected = np.asarray(json.loads(re.search(r"^predicted: (.*)$", session.stdout, re.M).group(1)), np.float32)
    for client in clients:
        served = client.predict("user_mlp", {name: NEW_ROWS[:, i] for i, name in enumerate("abc")})
        np.testing.assert_allclose(served["probability"], expected, atol=1e-5, err_msg=client.protocol)
        np.testing.assert_array_equal(served["class_id"], (expected[:, 0] > 0.5).astype(np.int64))


def test_python_api_trains_and_exports_a_factory_of_an_imported_module(published):
    # This failed with "unknown model 'user_mlp'" when the export's fresh-process validation used the registry.
    session = published.session
    assert session.returncode == 0, session.stdout + session.stderr[-3000:]
    assert f"exported: {published.session_base / 'user_mlp' / '1'}" in session.stdout
    assert MATCHES_LINE.search(session.stdout).group(1) == "ok"  # the validation the export ran in a fresh process
