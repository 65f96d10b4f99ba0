"""The plain scripts under scripts/: they run as users run them and do what they say."""
import json
import os
import re
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

pytestmark = pytest.mark.slow  # each test runs scripts in new processes that import TensorFlow

SCRIPTS = Path(__file__).resolve().parents[1] / "scripts"


def run_script(name: str, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(SCRIPTS / name), *args], capture_output=True, text=True, timeout=300)


def test_gradient_tape_regression_recovers_the_least_squares_solution():
    result = run_script("linear_regression_tape.py", "--epochs", "20")
    assert result.returncode == 0, result.stderr[-2000:]

    def vector(label: str) -> np.ndarray:
        line = re.search(rf"^{re.escape(label)}\s*:\s*\[(.*?)\]", result.stdout, re.M | re.S).group(1)
        return np.array(line.split(), dtype=float)

    np.testing.assert_allclose(vector("W (SGD)"), vector("W (lstsq)"), atol=0.05)
    sgd_bias, exact_bias = map(float, re.search(r"b \(SGD\) (\S+)\s+b \(lstsq\) (\S+)", result.stdout).groups())
    assert abs(sgd_bias - exact_bias) <= 0.05
    losses = [float(v) for v in re.findall(r"train mse (\S+)", result.stdout)]
    assert len(losses) == 20 and losses[-1] < losses[0] / 10


def test_train_script_takes_the_cli_flags(tmp_path):
    result = run_script("train.py", "logistic_regression", "--epochs", "2", "--seed", "4", "--run-dir",
                        str(tmp_path / "run"))
    assert result.returncode == 0, result.stderr[-2000:]
    config = json.loads((tmp_path / "run" / "config.json").read_text())
    assert config["epochs"] == 2 and config["seed"] == 4 and config["model"] == "logistic_regression"


def test_launcher_restarts_a_killed_job_that_names_its_data(tmp_path):
    # Restarts repeat the job's own arguments (here --dataset) plus --resume, which must continue the same run.
    run_dir = tmp_path / "run"
    launch = [sys.executable, str(SCRIPTS / "launch_local_workers.py"), "--workers", "2", "--", "binary_mlp",
              "--dataset", "synthetic_binary", "--epochs", "4", "--batch-size", "64", "-p", "learning_rate=0.03",
              "--run-dir", str(run_dir)]
    job = subprocess.Popen(launch, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    lines, worker_1, killed = [], None, False
    for line in job.stdout:  # kill worker 1 once the chief's first checkpoint exists
        lines.append(line)
        if match := re.match(r"\[launcher\] worker 1 pid (\d+)", line):
            worker_1 = int(match.group(1))
        if worker_1 and (run_dir / "checkpoints" / "checkpoint").exists():
            os.kill(worker_1, signal.SIGKILL)
            killed = True
            break
    output = "".join(lines) + job.communicate(timeout=300)[0]
    assert killed, output[-4000:]
    assert job.returncode == 0, output[-4000:]
    assert output.count("restarting the job from its last checkpoint") == 1
    # Both starts place each worker on the CPU or on a GPU of its own, never two on one GPU.
    placed = re.findall(r"\[launcher\] worker (\d) pid \d+ at 127\.0\.0\.1:\d+ on (CPU|GPU \d)", output)
    assert len(placed) == 4 and all(where in ("CPU", f"GPU {index}") for index, where in placed), placed
    config = json.loads((run_dir / "config.json").read_text())
    assert len(config["resumed_at_epochs"]) == 1 and 1 <= config["resumed_at_epochs"][0] < 4
    history = (run_dir / "history.csv").read_text().splitlines()
    assert [row.split(",")[0] for row in history[1:]] == ["0", "1", "2", "3"]  # one row per epoch
    assert json.loads((run_dir / "metrics.json").read_text())["accuracy"] >= 0.9

    # The job restarted once more after it finished (as a TFJob restarts a worker killed after model.keras was
    # written): every worker says the run is finished and succeeds, the run stays as it was.
    finished = (run_dir / "model.keras").read_bytes()
    again = subprocess.run([*launch, "--resume"], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                           check=False, timeout=300)
    assert again.returncode == 0, again.stdout[-4000:]
    assert again.stdout.count("is a finished run with these settings") == 2, again.stdout[-4000:]
    assert (run_dir / "model.keras").read_bytes() == finished
