"""Command-line start-up: wall seconds of `tfzoo --help`, `tfzoo train --help`, `tfzoo list` and `tfzoo predict`
over REST, each a new process as a user runs it, beside `python -c pass` (the interpreter's own start) in the same
run.

`predict` asks a `tfzoo serve` this script starts, serving a linear_regression trained for one epoch and exported
here. Runs alternate between the commands, so drift on the machine hits all of them; medians and minimums reported,
with the load average (a busy machine inflates every figure). Goals on an idle machine: `--help` and `predict`
within 1 s.

    python benchmarks/cli_startup.py --repeats 7
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import tfzoo
from tfzoo.serving.client import Client
from tfzoo.serving.server import server_process

GOALS = {"tfzoo --help": 1.0, "tfzoo train --help": 1.0, "tfzoo predict (REST)": 1.0}


def wall_seconds(command: list[str]) -> float:
    start = time.perf_counter()
    subprocess.run(command, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=5, help="runs of each command (default: %(default)s)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        run = tfzoo.train("linear_regression", epochs=1, run_dir=Path(folder) / "run", verbose=0)
        version_dir = tfzoo.export(run.run_dir, Path(folder) / "models", name="linear")
        with server_process("--model_name=linear", f"--model_base_path={version_dir.parent}") as (rest_port, _):
            with Client(port=rest_port) as client:
                (width,) = client.metadata("linear")["serving_default"].inputs["features"].shape[1:]
            tfzoo_command = [sys.executable, "-m", "tfzoo"]
            commands = {
                "python -c pass": [sys.executable, "-c", "pass"],
                "tfzoo --help": [*tfzoo_command, "--help"],
                "tfzoo train --help": [*tfzoo_command, "train", "--help"],
                "tfzoo list": [*tfzoo_command, "list"],
                "tfzoo predict (REST)": [*tfzoo_command, "predict", "--model", "linear", "--server",
                                         f"127.0.0.1:{rest_port}", "--json", json.dumps([[0.5] * width])],
            }
            times: dict[str, list[float]] = {name: [] for name in commands}
            for _ in range(args.repeats):
                for name, command in commands.items():
                    times[name].append(wall_seconds(command))
    load = ", ".join(f"{value:.2f}" for value in os.getloadavg())
    print(f"{args.repeats} runs each, {os.cpu_count()} CPUs, load average {load} (1, 5, 15 min) at the end")
    print("| command | median s | min s | goal |\n|---|---|---|---|")
    for name, values in times.items():
        goal = f"<= {GOALS[name]:g} s" if name in GOALS else ""
        print(f"| `{name}` | {statistics.median(values):.2f} | {min(values):.2f} | {goal} |")


if __name__ == "__main__":
    main()
