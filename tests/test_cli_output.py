"""What the `tfzoo` command prints, and what it imports: only tfzoo's own lines, progress that suits a pipe,
--quiet, the resume line, the published export folder, and no TensorFlow for --help and REST predict."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import tfzoo
from tfzoo.cli import main
from tfzoo.serving.client import Client
from tfzoo.serving.server import server_process

# Runs the command line in a fresh process, then says on stderr's last line whether TensorFlow or Keras came in.
IMPORT_CHECK = """
import sys
from tfzoo.cli import main
try:
    status = main(sys.argv[1:])
except SystemExit as exit:
    status = exit.code
print(sorted({"tensorflow", "keras"} & set(sys.modules)), file=sys.stderr)
sys.exit(status)
"""


def run_cli(*args: str, code: str | None = None) -> subprocess.CompletedProcess:
    """The command line in a new process, stdout and stderr through pipes (not a terminal), started as from a fresh
    shell: without the logging choice that an in-process `cli.main()` of another test left in this process's
    environment (TFZOO_VERBOSE, TF_CPP_MIN_LOG_LEVEL)."""
    command = [sys.executable, "-c", code, *args] if code else [sys.executable, "-m", "tfzoo", *args]
    environment = {name: value for name, value in os.environ.items()
                   if name not in ("TFZOO_VERBOSE", "TF_CPP_MIN_LOG_LEVEL")}
    return subprocess.run(command, capture_output=True, text=True, timeout=600, env=environment)


@pytest.mark.parametrize("args", [["--help"], *([command, "--help"] for command in (
    "train", "evaluate", "export", "validate", "serving-config", "serve", "predict", "generate", "list", "tfrecords"))])
@pytest.mark.slow
def test_help_imports_no_tensorflow(args: list[str]) -> None:
    result = run_cli(*args, code=IMPORT_CHECK)
    assert result.returncode == 0, result.stderr
    assert "usage: tfzoo" in result.stdout
    assert result.stderr.splitlines() == ["[]"]


@pytest.mark.slow
def test_predict_over_rest_imports_no_tensorflow(exported) -> None:
    version_dir = exported("linear_regression")
    with server_process("--model_name=linear", f"--model_base_path={version_dir.parent}") as (rest_port, _):
        with Client(port=rest_port) as client:
            (width,) = client.metadata("linear")["serving_default"].inputs["features"].shape[1:]
            expected = client.predict("linear", [[0.5] * width])["prediction"]
        result = run_cli("predict", "--model", "linear", "--server", f"127.0.0.1:{rest_port}",
                         "--json", json.dumps([[0.5] * width]), code=IMPORT_CHECK)
    assert result.returncode == 0, result.stderr
    assert result.stderr.splitlines() == ["[]"]
    np.testing.assert_allclose(json.loads(result.stdout)["outputs"]["prediction"], expected)


# `tfzoo validate` as the program (main() reads sys.argv), or as a call from a Python session (main(ARGS)) that then
# imports scikit-learn; prints which of the modules were imported.
VALIDATE_IMPORTS = """
import sys
from tfzoo.cli import main
as_program, sys.argv = sys.argv[1] == "program", ["tfzoo", *sys.argv[2:]]
status = main() if as_program else main(sys.argv[1:])
if not as_program:
    import sklearn  # a session's later work still has it
imported = sorted(name for name in ("tensorflow", "sklearn", "scipy", "matplotlib") if sys.modules.get(name))
print(imported, file=sys.stderr)
sys.exit(status)
"""


@pytest.mark.slow
def test_validate_program_loads_tensorflow_without_keras_optional_packages(exported) -> None:
    version_dir = str(exported("linear_regression"))
    program = run_cli("program", "validate", version_dir, code=VALIDATE_IMPORTS)
    assert program.returncode == 0, program.stderr
    assert "=> valid for TF Serving" in program.stdout
    assert program.stderr.splitlines()[-1] == "['tensorflow']"  # Keras would import the other three
    session = run_cli("session", "validate", version_dir, code=VALIDATE_IMPORTS)
    assert session.returncode == 0, session.stderr
    assert session.stderr.splitlines()[-1] == "['matplotlib', 'scipy', 'sklearn', 'tensorflow']"


@pytest.mark.slow
def test_train_into_a_pipe_prints_one_line_per_epoch_and_no_tensorflow_notices(tmp_path: Path) -> None:
    result = run_cli("train", "linear_regression", "--epochs", "2", "--run-dir", str(tmp_path / "run"))
    assert result.returncode == 0, result.stderr
    assert "\x08" not in result.stdout and "\r" not in result.stdout  # no progress-bar redraws
    lines = result.stdout.splitlines()
    assert [line for line in lines if line.startswith("Epoch ")] == ["Epoch 1/2", "Epoch 2/2"]
    assert len(lines) == 2 * 2 + 3  # per epoch: its title and its metrics line; then the three result lines
    assert result.stderr == ""  # no oneDNN, CUDA, cpu_feature_guard, absl or deprecation lines


@pytest.mark.slow
def test_train_quiet_prints_only_the_results(tmp_path: Path) -> None:
    result = run_cli("train", "linear_regression", "--epochs", "1", "--quiet", "--run-dir", str(tmp_path / "run"))
    assert result.returncode == 0, result.stderr
    assert [line.split(":")[0] for line in result.stdout.splitlines()] == ["run dir", "held-out metrics",
                                                                          "weights sha256"]
    assert result.stderr == ""


@pytest.mark.slow
def test_verbose_shows_tensorflow_own_lines() -> None:
    result = run_cli("--verbose", "list")
    assert result.returncode == 0
    assert "absl::InitializeLog" in result.stderr or "cpu_feature_guard" in result.stderr


@pytest.mark.slow
def test_a_resumed_run_says_where_it_resumes(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    run_dir = tmp_path / "run"
    tfzoo.train("linear_regression", epochs=1, run_dir=run_dir, verbose=0)
    (run_dir / "model.keras").unlink()  # as a run stopped after its first epoch's checkpoint, before it finished
    capsys.readouterr()
    tfzoo.train("linear_regression", epochs=2, run_dir=run_dir, resume=True, verbose=2)
    assert f"tfzoo: resuming {run_dir} at epoch 2 of 2, step 0 of " in capsys.readouterr().err


@pytest.mark.slow
def test_export_prints_the_published_folder_not_the_staging_one(trained_run, tmp_path: Path,
                                                               capsys: pytest.CaptureFixture) -> None:
    run = trained_run("linear_regression")
    assert main(["export", str(run.run_dir), "--model-base", str(tmp_path / "models"), "--name", "linear"]) == 0
    printed = capsys.readouterr().out
    version_dir = tmp_path / "models" / "linear" / "1"
    assert ".staging-" not in printed
    assert f"validate {version_dir}" in printed
    assert printed.splitlines()[-1] == str(version_dir)


BUILTINS_CHECK = """
import sys
import tfzoo
assert "tensorflow" not in sys.modules  # import tfzoo alone loads no TensorFlow
exec(sys.argv[1])  # how Keras comes in: by the user, or by a tfzoo module (which needs its package complete)
import keras
assert keras.saving.get_registered_object("tfzoo>PositionalEmbedding") is not None  # a built-in model's layer
assert callable(tfzoo.export)  # the function, although tfzoo.export is also a subpackage
"""


@pytest.mark.parametrize("keras_import", ["import keras", "from tfzoo.export import ExportError",
                                          "from tfzoo.text import task"])
@pytest.mark.slow
def test_built_in_models_are_registered_once_keras_is_imported(keras_import: str) -> None:
    """`import tfzoo` is lazy, yet keras.saving.load_model still knows tfzoo's Keras classes afterwards."""
    result = subprocess.run([sys.executable, "-c", BUILTINS_CHECK, keras_import], capture_output=True, text=True,
                            timeout=600)
    assert result.returncode == 0, result.stderr
