"""Streaming data: peak memory as the CSV grows, and throughput against the in-memory path.

Two figures, each printed as a ratio with its goal:
- memory: peak RSS (resource.getrusage ru_maxrss of a child process that loads the files and trains one epoch of
  binary_mlp) on a CSV of --rows rows and on one --factor times larger; goal: within 20%. For contrast the same
  child runs once more on the large CSV through the in-memory path (pandas, DataSplits), whose peak grows with
  the table (at the defaults, 16 and 159 MiB CSVs, it is already well above the streamed runs).
- throughput: training examples per second of epochs 2..N (epoch 1 holds graph tracing) of `tfzoo.train` on the
  small CSV, streamed (load_files) and in memory (DataSplits of the same rows); goal: streamed within 10%.

    python benchmarks/streaming_data.py                # about 75 seconds on 2 cores
    python benchmarks/streaming_data.py --rows 1000000 --factor 10 --epochs 3
"""
from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
from epoch_timer import EpochTimer

FEATURES = 8


def write_csv(path: Path, rows: int, seed: int) -> Path:
    """`rows` synthetic_binary-like rows (x ~ N(0, 1), label from a parabola), written a chunk at a time."""
    rng = np.random.default_rng(seed)
    plane, _ = np.linalg.qr(np.random.default_rng(0).normal(size=(FEATURES, 2)))
    with path.open("w") as out:
        out.write(",".join([f"x{i}" for i in range(FEATURES)] + ["label"]) + "\n")
        for start in range(0, rows, 100_000):
            x = rng.normal(size=(min(100_000, rows - start), FEATURES)).astype(np.float32)
            u, v = (x @ plane).T
            table = np.column_stack([x, (u**2 - v > 0.75).astype(np.float32)])
            np.savetxt(out, table, fmt="%.7g", delimiter=",")
    return path


def in_memory(train: Path, held_out: Path):
    """The rows of the CSVs as a DataSplits: the path every built-in dataset takes."""
    import pandas as pd

    from tfzoo.datasets import DataSplits

    def arrays(path: Path) -> tuple[np.ndarray, np.ndarray]:
        frame = pd.read_csv(path)
        return frame.drop(columns="label").to_numpy(np.float32), frame[["label"]].to_numpy(np.float32)

    (x, y), (x_held, y_held) = arrays(train), arrays(held_out)
    return DataSplits(name="benchmark", task="binary", x_train=x, y_train=y, x_val=x_held, y_val=y_held,
                      x_test=x_held, y_test=y_held, source={"name": "benchmark", "path": str(train)})


def child(mode: str, train: Path, held_out: Path, epochs: int, batch_size: int) -> dict:
    """Train binary_mlp in this process on the CSV; report peak RSS and steady-state examples per second."""

    import tfzoo
    from tfzoo.datasets import load_files

    data = (load_files(str(train), str(held_out), str(held_out), "label", task="binary") if mode == "streamed"
            else in_memory(train, held_out))
    timer = EpochTimer()
    with tempfile.TemporaryDirectory() as folder:
        tfzoo.train("binary_mlp", dataset=data, epochs=epochs, batch_size=batch_size, run_dir=Path(folder) / "run",
                    callbacks=[timer], verbose=0)
    steady = timer.seconds[1:] or timer.seconds
    return {"max_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
            "examples_per_second": data.num_examples("train") * len(steady) / sum(steady)}


def run_child(mode: str, train: Path, held_out: Path, epochs: int, batch_size: int) -> dict:
    command = [sys.executable, __file__, "--child", mode, "--train", str(train), "--held-out", str(held_out),
               "--epochs", str(epochs), "--batch-size", str(batch_size)]
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise SystemExit(f"{mode} child failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=200_000, help="rows of the small CSV (default %(default)s)")
    parser.add_argument("--factor", type=int, default=10, help="the large CSV is this many times larger")
    parser.add_argument("--epochs", type=int, default=4, help="epochs of the throughput runs (default %(default)s)")
    parser.add_argument("--batch-size", type=int, default=256, help="global batch size (default %(default)s)")
    parser.add_argument("--child", choices=("streamed", "in_memory"), help=argparse.SUPPRESS)
    parser.add_argument("--train", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--held-out", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(child(args.child, args.train, args.held_out, args.epochs, args.batch_size)))
        return

    with tempfile.TemporaryDirectory() as folder:
        small = write_csv(Path(folder) / "small.csv", args.rows, seed=1)
        large = write_csv(Path(folder) / "large.csv", args.rows * args.factor, seed=2)
        held_out = write_csv(Path(folder) / "held_out.csv", max(args.rows // 10, 100), seed=3)
        print(f"CSV sizes: small {small.stat().st_size / 2**20:.1f} MiB ({args.rows} rows), large "
              f"{large.stat().st_size / 2**20:.1f} MiB ({args.rows * args.factor} rows); batch {args.batch_size}")
        memory = {name: run_child("streamed", path, held_out, 1, args.batch_size)["max_rss_mb"]
                  for name, path in (("small", small), ("large", large))}
        memory["large in memory"] = run_child("in_memory", large, held_out, 1, args.batch_size)["max_rss_mb"]
        speed = {mode: run_child(mode, small, held_out, args.epochs, args.batch_size)["examples_per_second"]
                 for mode in ("in_memory", "streamed")}
    print(f"peak RSS, streamed: small {memory['small']:.0f} MiB, {args.factor}x larger {memory['large']:.0f} MiB; "
          f"ratio {memory['large'] / memory['small']:.2f} (goal <= 1.20)")
    print(f"peak RSS, in memory on the larger CSV: {memory['large in memory']:.0f} MiB "
          f"({memory['large in memory'] / memory['large']:.2f}x the streamed run)")
    print(f"training examples/s on the small CSV: in memory {speed['in_memory']:.0f}, streamed "
          f"{speed['streamed']:.0f}; ratio {speed['streamed'] / speed['in_memory']:.2f} (goal >= 0.90)")


if __name__ == "__main__":
    main()
