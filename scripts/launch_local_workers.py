"""Run a multi-worker `tfzoo train` on this machine: N worker processes on 127.0.0.1, each with its TF_CONFIG.

    python scripts/launch_local_workers.py --workers 2 -- binary_mlp --run-dir runs/mw --epochs 10

Everything after `--` goes to `tfzoo train` (with `--strategy multi_worker` added). Each worker gets a GPU of its
own when the machine has one per worker, else runs on the CPU. Worker 0 is the chief and writes the run dir; every
worker's output is printed with a `[worker i]` prefix. This is how a cluster manager (Kubernetes, a TFJob) runs the
job, shrunk to one machine: when a worker dies, the job stops every worker and starts them all again with the same
arguments plus `--resume`, up to --max-restarts times, so training continues from the last checkpoint instead of
starting over (TensorFlow's multi-worker fault-tolerance model: a collective cannot go on without one of its
members).
"""
from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import threading
import time

import tensorflow as tf

from tfzoo.cluster import local_tf_configs


def relay(stream, prefix: str) -> None:
    for line in stream:
        print(f"{prefix} {line}", end="", flush=True)


def worker_gpus(count: int) -> list[str | None]:
    """CUDA_VISIBLE_DEVICES for each worker: a GPU of its own when there is one per worker, else none (CPU).

    Workers sharing a GPU would give the collectives (NCCL) two ranks on one device, which they refuse. A
    CUDA_VISIBLE_DEVICES the user set is left alone (None).
    """
    if "CUDA_VISIBLE_DEVICES" in os.environ:
        return [None] * count
    if len(tf.config.list_physical_devices("GPU")) >= count:
        return [str(index) for index in range(count)]
    return [""] * count


def start_workers(count: int, train_args: list[str]) -> list[subprocess.Popen]:
    workers = []
    for index, (tf_config, gpu) in enumerate(zip(local_tf_configs(count), worker_gpus(count))):
        devices = {} if gpu is None else {"CUDA_VISIBLE_DEVICES": gpu}
        worker = subprocess.Popen(
            [sys.executable, "-m", "tfzoo", "train", *train_args, "--strategy", "multi_worker"],
            env={**os.environ, "TF_CONFIG": tf_config, **devices}, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
            text=True)
        threading.Thread(target=relay, args=(worker.stdout, f"[worker {index}]"), daemon=True).start()
        address = json.loads(tf_config)["cluster"]["worker"][index]
        where = "its CUDA_VISIBLE_DEVICES" if gpu is None else f"GPU {gpu}" if gpu else "CPU"
        print(f"[launcher] worker {index} pid {worker.pid} at {address} on {where}", flush=True)
        workers.append(worker)
    return workers


def stop(workers: list[subprocess.Popen], grace: float = 10.0) -> None:
    for worker in workers:
        if worker.poll() is None:
            worker.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + grace
    for worker in workers:
        try:
            worker.wait(timeout=max(0.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            worker.kill()
            worker.wait()


def run_job(count: int, train_args: list[str], max_restarts: int) -> int:
    """Run the workers until all succeed; restart them all with the same arguments plus --resume when one fails.

    --resume continues the run from its last checkpoint, or starts it when the job died before there was one.
    Exit status 2 is tfzoo's "bad input" (a usage or data error): starting again cannot help, so it ends the job.
    """
    for attempt in range(max_restarts + 1):
        args = train_args if attempt == 0 or "--resume" in train_args else [*train_args, "--resume"]
        workers = start_workers(count, args)
        while True:
            codes = [worker.poll() for worker in workers]
            if all(code == 0 for code in codes):
                print("[launcher] all workers finished", flush=True)
                return 0
            failed = [(i, code) for i, code in enumerate(codes) if code not in (None, 0)]
            if failed:
                break
            time.sleep(0.2)
        print(f"[launcher] worker(s) failed {failed}; stopping the others", flush=True)
        stop(workers)
        if any(code == 2 for _, code in failed):
            print("[launcher] a worker refused its input (exit status 2); not restarting", flush=True)
            return 2
        if attempt < max_restarts:
            print(f"[launcher] restarting the job from its last checkpoint ({attempt + 1}/{max_restarts})", flush=True)
    print("[launcher] giving up: no restarts left", flush=True)
    return 1


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0],
                                     usage="%(prog)s [--workers N] [--max-restarts N] -- MODEL --run-dir DIR [...]")
    parser.add_argument("--workers", type=int, default=2, help="number of worker processes (default: 2)")
    parser.add_argument("--max-restarts", type=int, default=3, help="job restarts after a failure (default: 3)")
    parser.add_argument("train_args", nargs=argparse.REMAINDER, help="arguments of `tfzoo train`, after --")
    args = parser.parse_args()
    train_args = args.train_args[1:] if args.train_args[:1] == ["--"] else args.train_args
    if not train_args or "--run-dir" not in train_args:
        parser.error("pass `-- MODEL --run-dir DIR ...`: every worker (and every restart) must use the same run dir")
    if "--strategy" in train_args:
        parser.error("leave out --strategy: the launcher runs --strategy multi_worker")
    if args.workers < 1:
        parser.error("--workers must be at least 1")
    if args.max_restarts < 0:
        parser.error("--max-restarts must be 0 (never restart) or more")
    return run_job(args.workers, train_args, args.max_restarts)


if __name__ == "__main__":
    sys.exit(main())
