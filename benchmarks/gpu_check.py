"""What the hardware gives tfzoo: one_device vs mirrored, float32 vs mixed precision, XLA on vs off, and text
generation speed, each as a ratio against its baseline in the same run, after saying what it ran on.

Training figures are `tfzoo.train` of mnist_cnn on scikit-learn's real digits (repeated to --examples per epoch),
global batch --batch-size, steady-state samples/s over epochs 2..--epochs (epoch 1 holds graph tracing):
- one_device (the baseline): GPU:0, else CPU:0; float32, XLA off.
- mirrored: every local GPU; on a machine without GPUs, --cpu-replicas logical CPU devices that share the same
  cores (there a ratio below 1 is what distribution costs, not a speed-up).
- mixed precision: tfzoo's own choice (`--mixed-precision`): mixed_float16 on a GPU, mixed_bfloat16 on a CPU; the
  table names the policy the trained model has.
- XLA: `--jit-compile`.
Generation: new tokens/s of text_generator's compiled generation loop with the key/value cache, against the same
loop recomputing the prefix at every step (the functions of benchmarks/generation_speed.py).

    python benchmarks/gpu_check.py          # small defaults: 1-2 minutes on 2 CPU cores
    python benchmarks/gpu_check.py --examples 60000 --batch-size 1024 --filters 64,128 --dense-units 512 \\
        --generation-batch 64               # sizes where a GPU matters
"""
from __future__ import annotations

import argparse
import dataclasses
import platform
import tempfile
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf
from epoch_timer import EpochTimer
from generation_speed import PROMPT_BYTES, benchmark_generator, device_name, generation_seconds, greedy_controls

import tfzoo
from tfzoo.datasets import DataSplits, load_dataset
from tfzoo.training.strategy import resolve_strategy


def positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"{value} is not a positive count; give 1 or more")
    return value


def positive_list(text: str) -> list[int]:
    return [positive(part) for part in text.split(",")]


def machine_lines() -> list[str]:
    """TensorFlow's version and build, and every accelerator it sees, with name and compute capability."""
    build = tf.sysconfig.get_build_info()
    lines = [f"TensorFlow {tf.__version__}, Keras {keras.__version__}, Python {platform.python_version()}",
             f"TensorFlow build: CUDA {build.get('cuda_version', 'none')}, cuDNN {build.get('cudnn_version', 'none')}"
             f" (is_cuda_build={build.get('is_cuda_build', False)})"]
    gpus = tf.config.list_physical_devices("GPU")
    for gpu in gpus:
        details = tf.config.experimental.get_device_details(gpu)
        capability = ".".join(str(part) for part in details.get("compute_capability", ())) or "unknown"
        lines.append(f"{gpu.name}: {details.get('device_name', 'unnamed')}, compute capability {capability}")
    tpus = tf.config.list_physical_devices("TPU")
    lines.append(f"{len(gpus)} GPU(s), {len(tpus)} TPU(s); host: {device_name() if not gpus else platform.machine()}")
    if gpus:  # from Ampere on, "float32" matrix products then run in TF32 (TensorFlow's default)
        tf32 = tf.config.experimental.tensor_float_32_execution_enabled()
        lines.append(f"TF32 for float32 matrix products: {'on' if tf32 else 'off'}")
    return lines


def repeated_digits(examples: int) -> DataSplits:
    """scikit-learn's digits with the training split repeated to `examples` (validation and test unchanged)."""
    data = load_dataset("digits")
    repeats = -(-examples // len(data.x_train))
    return dataclasses.replace(data, x_train=np.concatenate([data.x_train] * repeats)[:examples],
                               y_train=np.concatenate([data.y_train] * repeats)[:examples])


def training_rate(strategy: tf.distribute.Strategy, data: DataSplits, args: argparse.Namespace, run_dir: Path,
                  **options: bool) -> tuple[float, float, str]:
    """(steady-state samples/s, test accuracy, dtype policy of the first layer with weights) of one tfzoo.train."""
    timer = EpochTimer()
    result = tfzoo.train("mnist_cnn", dataset=data, epochs=args.epochs, batch_size=args.batch_size,
                         strategy=strategy, run_dir=run_dir, callbacks=[timer], verbose=0, filters=args.filters,
                         dense_units=args.dense_units, **options)
    policy = next(layer for layer in result.model.layers if layer.weights).dtype_policy.name
    return len(data.x_train) * (args.epochs - 1) / sum(timer.seconds[1:]), result.metrics["accuracy"], policy


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--epochs", type=positive, default=3, help="training epochs per setting (>= 2; the first "
                        "is not timed)")
    parser.add_argument("--examples", type=positive, default=2048, help="training examples per epoch")
    parser.add_argument("--batch-size", type=positive, default=128, help="global batch size")
    parser.add_argument("--filters", type=positive_list, default=[32, 64], help="mnist_cnn conv filters, e.g. 32,64")
    parser.add_argument("--dense-units", type=positive, default=64, help="mnist_cnn dense layer width")
    parser.add_argument("--cpu-replicas", type=positive, default=2,
                        help="logical CPU devices for mirrored when there is no GPU")
    parser.add_argument("--context", type=positive, default=384, help="text_generator context in tokens")
    parser.add_argument("--new-tokens", type=positive, default=256, help="tokens generated per call")
    parser.add_argument("--generation-batch", type=positive, default=8, help="prompts per generation call")
    parser.add_argument("--repeats", type=positive, default=3, help="timed generation calls, after the first")
    args = parser.parse_args()
    if args.epochs < 2:
        parser.error(f"--epochs {args.epochs} leaves no timed epoch (the first holds tracing); give 2 or more")
    if args.context < PROMPT_BYTES + args.new_tokens + 1:
        parser.error(f"--context {args.context} cannot hold the {PROMPT_BYTES}-byte prompt and {args.new_tokens} "
                     f"new tokens; give --context {PROMPT_BYTES + args.new_tokens + 1} or more")

    gpus = tf.config.list_physical_devices("GPU")
    # First, before any TensorFlow op: logical CPU devices can only be made then.
    mirrored = resolve_strategy("mirrored", num_devices=None if gpus else args.cpu_replicas)
    one_device = resolve_strategy("one_device")
    for line in machine_lines():
        print(line)
    mirrored_on = (f"{mirrored.num_replicas_in_sync} GPU(s)" if gpus else
                   f"{mirrored.num_replicas_in_sync} logical CPUs sharing the same cores")
    print(f"one_device on {one_device.extended.worker_devices[0]}; mirrored on "
          f"{', '.join(mirrored.extended.worker_devices)} ({mirrored_on})\n")

    data = repeated_digits(args.examples)
    rows: list[tuple[str, float, float | None]] = []
    with tempfile.TemporaryDirectory() as folder:
        settings = [("one_device, float32, XLA off (baseline)", one_device, {}),
                    (f"mirrored, {mirrored_on}", mirrored, {}),
                    ("one_device, mixed precision {policy}", one_device, {"mixed_precision": True}),
                    ("one_device, XLA on (jit_compile)", one_device, {"jit_compile": True})]
        for index, (label, strategy, options) in enumerate(settings):
            rate, accuracy, policy = training_rate(strategy, data, args, Path(folder) / str(index), **options)
            rows.append((label.format(policy=policy), rate, accuracy))

    model = benchmark_generator(args.context)
    controls = greedy_controls(args.new_tokens)
    rates = {}
    for name, use_cache in (("recompute the prefix (baseline)", False), ("key/value cache", True)):
        seconds = generation_seconds(model, args.generation_batch, controls, use_cache, args.repeats)[1]
        rates[name] = args.generation_batch * args.new_tokens / seconds

    print(f"training mnist_cnn (filters {','.join(map(str, args.filters))}, dense {args.dense_units}) on "
          f"{len(data.x_train)} examples/epoch, global batch {args.batch_size}; samples/s over epochs "
          f"2..{args.epochs}")
    print(f"  {'setting':58} {'samples/s':>10} {'vs baseline':>12} {'test accuracy':>14}")
    for label, rate, accuracy in rows:
        print(f"  {label:58} {rate:10.0f} {rate / rows[0][1]:11.2f}x {accuracy:14.3f}")
    print(f"generation: text_generator (default architecture, {args.context}-token context), batch "
          f"{args.generation_batch}, {args.new_tokens} new tokens, greedy; median of {args.repeats} calls")
    baseline = next(iter(rates.values()))
    print(f"  {'decoding':58} {'tokens/s':>10} {'vs baseline':>12}")
    for name, rate in rates.items():
        print(f"  {name:58} {rate:10.0f} {rate / baseline:11.2f}x")


if __name__ == "__main__":
    main()
