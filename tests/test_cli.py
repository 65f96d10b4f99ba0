"""The `tfzoo` command line, run as users run it: a real subprocess."""
import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import TF_SERVING_TESTDATA

import tfzoo
from tfzoo.cli import main
from tfzoo.serving.client import inputs_from_json
from tfzoo.serving.config import parse_batching_config, parse_model_config
from tfzoo.text.loading import load_generate_function


def tfzoo_cli(*args, cwd=None):
    return subprocess.run([sys.executable, "-m", "tfzoo", *args], capture_output=True, text=True, cwd=cwd, timeout=300)


@pytest.mark.slow
def test_list_prints_every_model_with_its_task_and_dataset():
    result = tfzoo_cli("list")
    assert result.returncode == 0, result.stderr
    listed = [line.split()[:3] for line in result.stdout.splitlines()]
    assert listed == [[name, tfzoo.get_spec(name).task.name, tfzoo.get_spec(name).default_dataset]
                      for name in tfzoo.list_models()]


@pytest.mark.parametrize("command", ["list", "train", "evaluate", "export", "validate", "serving-config", "serve",
                                     "predict", "generate"])
def test_every_command_has_help(command, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main([command, "--help"])
    assert exit_info.value.code == 0 and f"usage: tfzoo {command}" in capsys.readouterr().out


@pytest.mark.slow
def test_train_then_evaluate_from_the_command_line(tmp_path):
    run_dir = tmp_path / "run"
    trained = tfzoo_cli("train", "logistic_regression", "--epochs", "3", "--seed", "3", "--run-dir", str(run_dir),
                        "-p", "learning_rate=0.5")
    assert trained.returncode == 0, trained.stderr
    assert f"run dir: {run_dir}" in trained.stdout
    config = json.loads((run_dir / "config.json").read_text())
    assert config["hparams"]["learning_rate"] == 0.5 and config["seed"] == 3 and config["epochs"] == 3
    printed = json.loads(re.search(r"^held-out metrics: (.*)$", trained.stdout, re.M).group(1))
    assert re.search(r"^weights sha256: [0-9a-f]{64}$", trained.stdout, re.M)
    assert printed == json.loads((run_dir / "metrics.json").read_text())
    assert printed["accuracy"] >= 0.9

    evaluated = tfzoo_cli("evaluate", str(run_dir))
    assert evaluated.returncode == 0, evaluated.stderr
    assert json.loads(evaluated.stdout) == pytest.approx(printed, rel=1e-5)


@pytest.mark.slow
def test_train_on_a_csv_from_the_command_line(tmp_path):
    lines = ["a,b,c,label"] + [f"{i % 7},{(i * 3) % 5},{i % 2},{int(i % 7 > 3)}" for i in range(200)]
    (tmp_path / "table.csv").write_text("\n".join(lines) + "\n")
    result = tfzoo_cli("train", "binary_mlp", "--csv", str(tmp_path / "table.csv"), "--target", "label",
                       "--epochs", "1", "--run-dir", str(tmp_path / "run"))
    assert result.returncode == 0, result.stderr
    config = json.loads((tmp_path / "run" / "config.json").read_text())
    assert config["hparams"]["input_shape"] == [3]
    assert config["dataset"]["target"] == "label"


@pytest.mark.parametrize(
    "args, message",
    [
        (["train", "resnet"], "unknown model 'resnet'; known models: binary_mlp"),
        (["train", "mnist_mlp", "-p", "hidden=3"], "no hyperparameter 'hidden'"),
        (["train", "mnist_mlp", "-p", "dropout=-0.1", "--run-dir", "run"],
         "hyperparameter dropout=-0.1 is out of its range [0, 1)"),
        (["train", "binary_mlp", "--csv", "missing.csv"], "--csv and --target go together"),
        (["train", "binary_mlp", "--csv", "missing.csv", "--target", "y"], "missing.csv"),
        (["train", "linear_regression", "--dataset", "digits"], "regression model but dataset 'digits'"),
        (["evaluate", "nowhere"], "not a finished tfzoo run dir"),
        (["export", "nowhere", "--model-base", "models", "--name", ""], "--name '' cannot name a served model"),
        (["export", "nowhere", "--model-base", "models", "--name", "a b"], "--name 'a b' cannot name a served model"),
    ],
)
def test_user_errors_exit_2_with_one_clear_line(tmp_path, monkeypatch, capsys, args, message):
    monkeypatch.chdir(tmp_path)
    assert main(args) == 2
    error = capsys.readouterr().err
    assert message in error and error.count("\n") == 1
    assert not (tmp_path / "run").exists()  # refused before anything is written


@pytest.mark.parametrize("flag, value", [("--dataset", "imagenet"), ("--dataset", "csv"), ("--strategy", "gpu_farm")])
def test_unknown_dataset_and_strategy_are_rejected_by_argparse(capsys, flag, value):
    with pytest.raises(SystemExit) as exit_info:
        main(["train", "mnist_cnn", flag, value])
    assert exit_info.value.code == 2
    assert f"invalid choice: '{value}'" in capsys.readouterr().err




def test_serving_config_writes_three_files_that_parse(tmp_path, capsys):
    base = tmp_path / "models"
    shutil.copytree(TF_SERVING_TESTDATA / "saved_model_half_plus_two_2_versions", base / "half_plus_two")
    code = main(["serving-config", str(base), "--out", str(tmp_path / "out"), "--version-policy", "specific",
                 "--versions", "123", "124", "--label", "stable=123", "--label", "canary=124",
                 "--base-path-prefix", "/models", "--max-batch-size", "32"])
    assert code == 0
    assert sorted(Path(line).name for line in capsys.readouterr().out.split()) == [
        "batching.config", "models.config", "monitoring.config"]
    config = parse_model_config((tmp_path / "out" / "models.config").read_text())
    model = config.model_config_list.config[0]
    assert (model.name, model.base_path) == ("half_plus_two", "/models/half_plus_two")
    assert list(model.model_version_policy.specific.versions) == [123, 124]
    assert dict(model.version_labels) == {"stable": 123, "canary": 124}
    assert parse_batching_config((tmp_path / "out" / "batching.config").read_text()).max_batch_size.value == 32


def test_serving_config_label_on_an_unserved_version_fails_clearly(tmp_path, capsys):
    version = tmp_path / "models" / "m" / "1"
    version.mkdir(parents=True)
    (version / "saved_model.pb").write_bytes(b"")
    assert main(["serving-config", str(tmp_path / "models"), "--out", str(tmp_path / "out"),
                 "--label", "canary=7"]) == 2
    assert "canary" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


# `tfzoo predict --json`: inline or @FILE, in each form `tfzoo predict --help` lists.

@pytest.mark.parametrize("body, inputs", [
    ({"x": [[1, 2]]}, {"x": [[1, 2]]}),  # {INPUT: VALUES}
    ([[1.5], [2.5]], [[1.5], [2.5]]),  # plain VALUES for a one-input signature
    ({"inputs": {"x": [1], "y": ["a"]}}, {"x": [1], "y": ["a"]}),  # TF Serving's columnar body
    ({"instances": [[1], [2]]}, [[1], [2]]),  # TF Serving's row body, one input
    ({"instances": [{"x": 1, "y": "a"}, {"y": "b", "x": 2}]}, {"x": [1, 2], "y": ["a", "b"]}),  # rows -> columns
    ({"instances": [{"b64": "AAE="}, {"b64": "Ag=="}]}, [{"b64": "AAE="}, {"b64": "Ag=="}]),  # bytes rows stay rows
])
def test_json_inputs_inline_and_from_a_file(tmp_path, body, inputs):
    assert inputs_from_json(json.dumps(body)) == inputs
    path = tmp_path / "request.json"
    path.write_text(json.dumps(body), encoding="utf-8")
    assert inputs_from_json(f"@{path}") == inputs


@pytest.mark.parametrize("text, message", [
    ("@TMP/missing.json", "--json @TMP/missing.json: no such file; pass an existing JSON file after @, or inline JSON"),
    ('{"x": [1,', "--json is not valid JSON (Expecting value: line 1 column 10 (char 9)); pass inline JSON or @FILE"),
    ('{"instances": [{"x": 1}, {"y": 2}]}',
     "--json instances[1] has inputs y but instances[0] has x; give every row the same inputs"),
])
def test_bad_json_inputs_are_one_line_naming_the_problem(tmp_path, text, message):
    with pytest.raises(ValueError) as refused:
        inputs_from_json(text.replace("TMP", str(tmp_path)))
    assert str(refused.value) == message.replace("TMP", str(tmp_path))


def test_rows_with_different_inputs_end_predict_in_one_line(capsys):
    # Refused while reading --json: no server is asked (none runs here).
    assert main(["predict", "--model", "m", "--json", '{"instances": [{"x": 1}, {"x": 2, "y": 3}]}']) == 2
    error = capsys.readouterr().err
    assert error == ("tfzoo predict: error: --json instances[1] has inputs x, y but instances[0] has x; "
                     "give every row the same inputs\n")


# `tfzoo generate`'s folder: what is not a text generator is refused before any prompt runs.

def test_generate_function_from_a_folder_that_holds_no_generator(tmp_path, trained_run):
    run_dir = trained_run("logistic_regression").run_dir
    with pytest.raises(ValueError, match=re.escape(f"{run_dir} is a run of logistic_regression, not a text "
                                                   "generator; tfzoo generate needs a text_generator export")):
        load_generate_function(run_dir)
    damaged = tmp_path / "damaged"
    damaged.mkdir()
    (damaged / "saved_model.pb").write_bytes(b"not a protocol buffer")
    with pytest.raises(ValueError, match=re.escape(f"{damaged} cannot be loaded as a SavedModel")):
        load_generate_function(damaged)
    with pytest.raises(FileNotFoundError, match="is not a finished tfzoo run dir"):
        load_generate_function(tmp_path / "nowhere")


def test_predict_prints_every_output_under_its_name_one_output_too():
    """One output was printed as TF Serving's {"outputs": VALUE}, dropping the name the Python client keeps."""
    import numpy as np

    from tfzoo.cli import render_outputs

    one = json.loads(render_outputs({"prediction": np.array([[1.5], [float("nan")]], np.float32)}))
    assert one["outputs"].keys() == {"prediction"} and one["outputs"]["prediction"][0] == [1.5]
    several = {"class_id": np.array([1, 0]), "text": np.array(["中文".encode(), b"b"], object)}
    assert json.loads(render_outputs(several)) == {"outputs": {"class_id": [1, 0], "text": ["中文", "b"]}}
