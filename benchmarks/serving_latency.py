"""Serving speed of mnist_cnn: in-process SavedModel calls vs the local server over REST and over gRPC.

One trained, exported mnist_cnn (digits, offline) is served by `tfzoo serve` in its own process on 127.0.0.1.
For each path: p50/p99 latency of single-image requests (sequential), then throughput with 8 concurrent
clients sending single-image requests; the served/in-process ratios are printed beside. Requests are plain
TF Serving API calls (urllib JSON, PredictionService stub), so the figures are the server's, not a client
library's.

    python benchmarks/serving_latency.py --requests 300
"""
from __future__ import annotations

import argparse
import json
import tempfile
import time
import urllib.request
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import grpc
import numpy as np
import tensorflow as tf
from tensorflow_serving.apis import predict_pb2, prediction_service_pb2_grpc

import tfzoo
from tfzoo.datasets import load_dataset
from tfzoo.serving.config import write_serving_configs
from tfzoo.serving.server import server_process

CONCURRENCY = 8


def latency_ms(call: Callable[[np.ndarray], object], images: np.ndarray, count: int) -> np.ndarray:
    times = []
    for i in range(count):
        started = time.perf_counter()
        call(images[i % len(images)][None])
        times.append((time.perf_counter() - started) * 1000)
    return np.array(times)


def throughput(call: Callable[[np.ndarray], object], images: np.ndarray, count: int) -> float:
    """Requests per second with CONCURRENCY threads each sending single-image requests."""
    def worker(offset: int) -> None:
        for i in range(count // CONCURRENCY):
            call(images[(offset + i) % len(images)][None])

    started = time.perf_counter()
    with ThreadPoolExecutor(CONCURRENCY) as pool:
        list(pool.map(worker, range(CONCURRENCY)))
    return (count // CONCURRENCY * CONCURRENCY) / (time.perf_counter() - started)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--requests", type=int, default=300, help="requests per measurement")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as folder:
        folder = Path(folder)
        run = tfzoo.train("mnist_cnn", dataset="digits", epochs=2, run_dir=folder / "run", verbose=0)
        version_dir = tfzoo.export(run, folder / "models")
        write_serving_configs(folder / "models", folder / "config")
        images = load_dataset("digits").arrays("test")[0][:64]

        serving_default = tf.saved_model.load(str(version_dir), tags=["serve"]).signatures["serving_default"]

        def in_process(batch: np.ndarray) -> object:
            return serving_default(image=tf.constant(batch))

        with server_process(f"--model_config_file={folder / 'config' / 'models.config'}") as (rest_port, grpc_port):
            url = f"http://127.0.0.1:{rest_port}/v1/models/mnist_cnn:predict"

            def rest(batch: np.ndarray) -> object:
                body = json.dumps({"instances": batch.tolist()}).encode()
                request = urllib.request.Request(url, data=body, headers={"Content-Type": "application/json"})
                with urllib.request.urlopen(request, timeout=30) as response:
                    return json.load(response)

            channel = grpc.insecure_channel(f"127.0.0.1:{grpc_port}")
            stub = prediction_service_pb2_grpc.PredictionServiceStub(channel)

            def grpc_call(batch: np.ndarray) -> object:
                request = predict_pb2.PredictRequest()
                request.model_spec.name = "mnist_cnn"
                request.inputs["image"].CopyFrom(tf.make_tensor_proto(batch))
                return stub.Predict(request, timeout=30)

            paths = {"in-process": in_process, "REST": rest, "gRPC": grpc_call}
            for call in paths.values():  # warm-up: first calls trace and open connections
                for _ in range(10):
                    call(images[:1])
            results = {}
            for name, call in paths.items():
                times = latency_ms(call, images, args.requests)
                results[name] = (np.percentile(times, 50), np.percentile(times, 99),
                                 throughput(call, images, args.requests))
            channel.close()

    base = results["in-process"]
    print(f"mnist_cnn, batch 1, {args.requests} requests per figure, {CONCURRENCY} concurrent clients for throughput")
    print(f"{'path':11} {'p50 ms':>8} {'p99 ms':>8} {'req/s @8':>9} {'p50 vs in-process':>18} {'req/s vs in-process':>20}")
    for name, (p50, p99, rps) in results.items():
        print(f"{name:11} {p50:8.2f} {p99:8.2f} {rps:9.0f} {p50 / base[0]:17.1f}x {rps / base[2]:19.2f}x")


if __name__ == "__main__":
    main()
