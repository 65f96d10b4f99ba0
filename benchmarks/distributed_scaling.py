"""Data-parallel scaling of mnist_cnn training: default vs mirrored (2 logical CPUs) vs 2 local workers.

Each configuration trains in its own fresh process(es) through `tfzoo.train` on the same data (real MNIST
digits from tests/data/mnist-t10k), same global batch and epochs.
Steady-state samples/second counts epochs 2..N (epoch 1 holds graph tracing and, for workers, cluster set-up).
Scaling efficiency = (samples/s with N replicas / samples/s of default) / N. On one machine the replicas
share the same CPU cores, so this measures tfzoo's distribution overhead, not a cluster's speed-up.

    python benchmarks/distributed_scaling.py --epochs 4
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

from epoch_timer import EpochTimer

from tfzoo.cluster import local_tf_configs

MNIST_T10K = Path(__file__).resolve().parents[1] / "tests" / "data" / "mnist-t10k"  # the real MNIST test set


def measure(strategy: str, epochs: int, batch_size: int, run_dir: str) -> None:
    """Inside a fresh process: train and print {"samples_per_second": ...} for epochs 2..N."""
    from tfzoo.training.strategy import resolve_strategy

    resolved = resolve_strategy(strategy, num_devices=2 if strategy == "mirrored" else None)

    import tfzoo
    from tfzoo.datasets import load_dataset

    data = load_dataset("mnist", data_dir=str(MNIST_T10K))
    timer = EpochTimer()
    tfzoo.train("mnist_cnn", dataset=data, epochs=epochs, batch_size=batch_size, strategy=resolved,
                run_dir=run_dir, callbacks=[timer], verbose=0)
    rate = len(data.x_train) * (epochs - 1) / sum(timer.seconds[1:])
    print("RESULT " + json.dumps({"samples_per_second": rate, "replicas": resolved.num_replicas_in_sync,
                                  "train_examples": len(data.x_train)}), flush=True)


def run(strategy: str, args: argparse.Namespace, folder: Path, env: dict[str, str] | None = None) -> subprocess.Popen:
    command = [sys.executable, __file__, "--measure", strategy, "--epochs", str(args.epochs),
               "--batch-size", str(args.batch_size), "--run-dir", str(folder / strategy)]
    return subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
                            env={**os.environ, **(env or {})})


def result(process: subprocess.Popen) -> dict:
    output, _ = process.communicate(timeout=1800)
    if process.returncode != 0:
        raise RuntimeError(f"a benchmark process failed with status {process.returncode}:\n{output[-2000:]}")
    return json.loads(output.split("RESULT ", 1)[1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--epochs", type=int, default=4)
    parser.add_argument("--batch-size", type=int, default=128, help="global batch size")
    parser.add_argument("--measure", help=argparse.SUPPRESS)  # internal: one measurement in this process
    parser.add_argument("--run-dir", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.measure:
        measure(args.measure, args.epochs, args.batch_size, args.run_dir)
        return

    with tempfile.TemporaryDirectory() as folder:
        folder = Path(folder)
        rates = {"default": result(run("default", args, folder)), "mirrored": result(run("mirrored", args, folder))}
        workers = [run("multi_worker", args, folder / f"w{i}", {"TF_CONFIG": tf_config})
                   for i, tf_config in enumerate(local_tf_configs(2))]
        rates["multi_worker"] = [result(worker) for worker in workers][0]

    base = rates["default"]["samples_per_second"]
    print(f"mnist_cnn, {rates['default']['train_examples']} training images, global batch {args.batch_size}, "
          f"epochs 2..{args.epochs} timed, {os.cpu_count()} CPU cores")
    print(f"{'strategy':24} {'replicas':>8} {'samples/s':>10} {'vs default':>11} {'efficiency':>11}")
    for name, label in [("default", "default"), ("mirrored", "mirrored (2 logical CPUs)"),
                        ("multi_worker", "2 local workers")]:
        figures = rates[name]
        speedup = figures["samples_per_second"] / base
        print(f"{label:24} {figures['replicas']:8d} {figures['samples_per_second']:10.0f} {speedup:10.2f}x "
              f"{speedup / figures['replicas']:10.0%}")


if __name__ == "__main__":
    main()
