"""Training overhead: `tfzoo.train` against a hand-written plain-Keras `fit` of the same model and data.

Both sides build the same architecture, see the same examples in the same batches for the same epochs,
validate every epoch, evaluate on the test split and save the model; tfzoo also writes its run dir
(config, history CSV, curves, TensorBoard scalars). Two figures per model:
- steady-state samples/second: training examples per second of epochs 2..N (epoch 1 holds the one-off
  graph tracing), timed by the same epoch timer on both sides; the 1.05 goal applies to this ratio;
- end to end: wall seconds of the whole call, which adds tfzoo's fixed per-run cost (files, plot).
Runs alternate (plain, tfzoo, plain, tfzoo, ...) so drift on the machine hits both sides; medians reported.

    python benchmarks/training_overhead.py --epochs 5 --epoch-size 60000 --repeats 3
"""
from __future__ import annotations

import argparse
import dataclasses
import statistics
import tempfile
import time
from pathlib import Path

import keras
import numpy as np
from epoch_timer import EpochTimer

import tfzoo
from tfzoo.datasets import DataSplits, load_dataset

MNIST_T10K = Path(__file__).resolve().parents[1] / "tests" / "data" / "mnist-t10k"  # the real MNIST test set


def benchmark_data(epoch_size: int) -> DataSplits:
    """Real digits (the MNIST t10k files in tests/data), training split repeated to
    `epoch_size` images so an epoch is as long as one over MNIST's 60,000 training images."""
    data = load_dataset("mnist", data_dir=str(MNIST_T10K))
    repeats = -(-epoch_size // len(data.x_train))
    x_train = np.tile(data.x_train, (repeats, 1, 1))[:epoch_size]
    y_train = np.tile(data.y_train, repeats)[:epoch_size]
    return dataclasses.replace(data, x_train=x_train, y_train=y_train,
                               source={**data.source, "benchmark_epoch_size": epoch_size})


def plain_keras(name: str, data: DataSplits, epochs: int, batch_size: int, folder: Path) -> tuple[float, EpochTimer]:
    """What a user writes by hand: build, fit with validation, evaluate, save."""
    timer = EpochTimer()
    started = time.perf_counter()
    keras.utils.set_random_seed(0)
    model = tfzoo.create_model(name, input_shape=data.input_shape)
    model.fit(data.pipeline("train", batch_size, shuffle=True), validation_data=data.pipeline("validation", batch_size),
              epochs=epochs, shuffle=False, callbacks=[timer], verbose=0)
    model.evaluate(data.pipeline("test", batch_size), verbose=0)
    model.save(folder / "plain.keras")
    return time.perf_counter() - started, timer


def with_tfzoo(name: str, data: DataSplits, epochs: int, batch_size: int, folder: Path) -> tuple[float, EpochTimer]:
    timer = EpochTimer()
    started = time.perf_counter()
    tfzoo.train(name, dataset=data, epochs=epochs, batch_size=batch_size, run_dir=folder / "run",
                callbacks=[timer], verbose=0)
    return time.perf_counter() - started, timer


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--models", nargs="+", default=["mnist_mlp", "mnist_cnn"])
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--epoch-size", type=int, default=60_000, help="training images per epoch (MNIST: 60,000)")
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    if args.epochs < 2:
        parser.error("--epochs must be at least 2 (epoch 1 is excluded from the steady-state rate)")

    data = benchmark_data(args.epoch_size)
    steady_samples = len(data.x_train) * (args.epochs - 1)
    print(f"data: {data.name}, {len(data.x_train)} training images per epoch, {args.epochs} epochs, batch {args.batch_size}, "
          f"median of {args.repeats} alternating runs")
    print(f"{'model':10} {'plain samples/s':>16} {'tfzoo samples/s':>16} {'ratio':>6}   "
          f"{'plain s':>8} {'tfzoo s':>8} {'ratio':>6}  goal (steady ratio <= 1.05)")
    for name in args.models:
        runs: dict[str, list[tuple[float, EpochTimer]]] = {"plain": [], "tfzoo": []}
        with tempfile.TemporaryDirectory() as folder:  # untimed warm-up: first-use costs of TF hit neither side
            plain_keras(name, data, 2, args.batch_size, Path(folder))
            with_tfzoo(name, data, 2, args.batch_size, Path(folder))
        for _ in range(args.repeats):
            with tempfile.TemporaryDirectory() as folder:
                runs["plain"].append(plain_keras(name, data, args.epochs, args.batch_size, Path(folder)))
                runs["tfzoo"].append(with_tfzoo(name, data, args.epochs, args.batch_size, Path(folder)))
        rate = {side: statistics.median(steady_samples / sum(timer.seconds[1:]) for _, timer in results)
                for side, results in runs.items()}
        wall = {side: statistics.median(seconds for seconds, _ in results) for side, results in runs.items()}
        steady_ratio = rate["plain"] / rate["tfzoo"]
        print(f"{name:10} {rate['plain']:16.0f} {rate['tfzoo']:16.0f} {steady_ratio:6.3f}   "
              f"{wall['plain']:8.2f} {wall['tfzoo']:8.2f} {wall['tfzoo'] / wall['plain']:6.3f}  "
              f"{'ok' if steady_ratio <= 1.05 else 'MISSED'}")


if __name__ == "__main__":
    main()
