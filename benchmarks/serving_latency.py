"""Serving speed at 1, 8 and 32 clients: in-process vs `tfzoo serve` over gRPC and REST, batching off and on.

One trained, exported model (--model): mnist_cnn (digits, offline; batch-1 images to serving_default) or
text_generator (python_docs, one epoch; batch-1 prompts to `generate`, greedy, 16 new tokens: a decoding loop per
request, where merging requests saves whole graph runs). For each path and each of 1, 8 and 32 concurrent client
threads sending batch-1 requests back to back: p50 and p99 latency and throughput, with the ratio of each
throughput to the in-process one at the same concurrency and to the in-process one at 8 clients. Paths:
- in-process: the SavedModel's signature called directly, one loaded model shared by the threads;
- gRPC: a PredictionService stub on one channel per client thread, with its own connection (a local subchannel
  pool; gRPC would otherwise share one connection between channels to the same address), as separate client
  processes have and like REST's connection per thread; one channel shared by 32 threads would measure one
  client multiplexing streams over a single connection instead;
- REST: one persistent http.client.HTTPConnection per client thread, columnar {"inputs": ...} JSON.
The served paths run against `tfzoo serve` in a child process on 127.0.0.1 (server_process), first without
batching, then with --enable_batching=true --batching_parameters_file=FILE (render_batching_config of the
--max-batch-size, --batch-timeout-micros, --max-enqueued-batches and --num-batch-threads options), each with
the --server-flag flags. Request bodies and protos are built before timing, so a client's own work is the send
and the answer; client and server still share this machine's cores. Each client thread sends a few untimed
requests first (connection, first graph runs); failed requests are counted per row and left out of the
latencies.

Then a robustness pass (--no-robustness skips it): 32 threads send --robustness-requests batch-1 REST predicts
to the batching server, each on a NEW connection, and every failure is counted by kind (exception type, HTTP
status); the goal is none.

    .venv/bin/python benchmarks/serving_latency.py                 # --requests 5000 --robustness-requests 20000
    .venv/bin/python benchmarks/serving_latency.py --requests 300 --robustness-requests 2000   # a quick check
    .venv/bin/python benchmarks/serving_latency.py --model text_generator --requests 400 --no-robustness
"""
from __future__ import annotations

import argparse
import collections
import contextlib
import http.client
import json
import os
import platform
import tempfile
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import grpc
import numpy as np
import tensorflow as tf
from tensorflow_serving.apis import predict_pb2, prediction_service_pb2_grpc

import tfzoo
from tfzoo.datasets import load_dataset
from tfzoo.serving.config import render_batching_config, write_serving_configs
from tfzoo.serving.server import server_process
from tfzoo.text.generation import GENERATE_SIGNATURE, PROMPT
from tfzoo.text.tokenizer import example_prompts

MODELS = ("mnist_cnn", "text_generator")
NEW_TOKENS = 16  # text_generator: tokens per prompt, greedy (each request a decoding loop of this many steps)
CONCURRENCY = (1, 8, 32)
GOAL_CLIENTS = 8  # the goals are at 8 clients (and above in-process at 32)
ROBUSTNESS_CLIENTS = 32
WARMUP_REQUESTS = 3  # per client thread, untimed
TIMEOUT = 30.0  # seconds per request
HOST = "127.0.0.1"


class Client(Protocol):
    def send(self, index: int) -> None: ...  # one batch-1 request; raises on any failure
    def close(self) -> None: ...


class HTTPStatusError(Exception):
    """A REST answer other than 200."""

    def __init__(self, status: int, body: bytes):
        super().__init__(f"HTTP {status}: {body[:200]!r}")
        self.status = status


@dataclass
class Workload:
    """Batch-1 requests to one signature of one model: each a {input name: array with a batch dimension of 1}."""

    model: str
    signature: str
    inputs: list[dict[str, np.ndarray]]

    def rest_bodies(self) -> list[bytes]:
        """TF Serving's columnar JSON ("inputs"), strings as JSON strings."""
        def column(value: np.ndarray) -> list:
            return [v.decode() for v in value] if value.dtype == object else value.tolist()
        return [json.dumps({"signature_name": self.signature, "inputs": {name: column(value) for name, value in
                                                                         inputs.items()}}).encode()
                for inputs in self.inputs]

    def protos(self) -> list[predict_pb2.PredictRequest]:
        requests = []
        for inputs in self.inputs:
            request = predict_pb2.PredictRequest()
            request.model_spec.name = self.model
            request.model_spec.signature_name = self.signature
            for name, value in inputs.items():
                request.inputs[name].CopyFrom(tf.make_tensor_proto(value))
            requests.append(request)
        return requests


def workload(model: str, run: tfzoo.TrainResult) -> Workload:
    """64 held-out examples as batch-1 requests: images for mnist_cnn; for text_generator, prompts through the
    `generate` signature, greedy, NEW_TOKENS tokens each."""
    if model == "mnist_cnn":
        images = load_dataset("digits").arrays("test")[0][:64].astype(np.float32)
        return Workload(model, "serving_default", [{"image": image[None]} for image in images])
    config = json.loads((run.run_dir / "config.json").read_text())
    prompts = example_prompts(load_dataset(**config["dataset"]).arrays("test")[0][:64])
    controls = {"max_new_tokens": np.array([NEW_TOKENS], np.int32), "temperature": np.zeros(1, np.float32),
                "top_k": np.zeros(1, np.int32), "top_p": np.ones(1, np.float32), "seed": np.zeros(1, np.int64),
                "repetition_penalty": np.ones(1, np.float32), "no_repeat_ngram_size": np.zeros(1, np.int32)}
    return Workload(model, GENERATE_SIGNATURE, [{PROMPT: np.array([prompt.encode()], dtype=object), **controls}
                                                for prompt in prompts])


class InProcess:
    def __init__(self, function: Callable[..., object], work: Workload):
        self.function, self.inputs = function, work.inputs

    def send(self, index: int) -> None:  # from NumPy arrays, as an application holds its input
        self.function(**{name: tf.constant(value) for name, value in self.inputs[index % len(self.inputs)].items()})

    def close(self) -> None:
        pass


class GrpcClient:
    def __init__(self, port: int, requests: Sequence[predict_pb2.PredictRequest]):
        self.channel = grpc.insecure_channel(f"{HOST}:{port}", options=[("grpc.use_local_subchannel_pool", 1)])
        self.predict = prediction_service_pb2_grpc.PredictionServiceStub(self.channel).Predict
        self.requests = requests

    def send(self, index: int) -> None:
        self.predict(self.requests[index % len(self.requests)], timeout=TIMEOUT)

    def close(self) -> None:
        self.channel.close()


class RestClient:
    """Predicts over one persistent connection (http.client reopens it when the server closed it), or over a new
    connection per request with `reuse=False`."""

    def __init__(self, port: int, model: str, bodies: Sequence[bytes], reuse: bool = True):
        self.port, self.path, self.bodies, self.reuse = port, f"/v1/models/{model}:predict", bodies, reuse
        self.connection = http.client.HTTPConnection(HOST, port, timeout=TIMEOUT)

    def send(self, index: int) -> None:
        connection = self.connection if self.reuse else http.client.HTTPConnection(HOST, self.port, timeout=TIMEOUT)
        try:
            connection.request("POST", self.path, body=self.bodies[index % len(self.bodies)],
                               headers={"Content-Type": "application/json"})
            response = connection.getresponse()
            body = response.read()
        except Exception:
            connection.close()  # a half-used connection cannot carry the next request
            raise
        if not self.reuse:
            connection.close()
        if response.status != 200:
            raise HTTPStatusError(response.status, body)

    def close(self) -> None:
        self.connection.close()


def failure_kind(error: Exception) -> str:
    """How a failed request is counted: its HTTP status, gRPC status code or exception type."""
    if isinstance(error, HTTPStatusError):
        return f"HTTP {error.status}"
    if isinstance(error, grpc.RpcError):
        return f"gRPC {error.code().name}"
    return type(error).__name__


@dataclass
class Measurement:
    p50_ms: float
    p99_ms: float
    answered: int  # requests that succeeded
    seconds: float
    failures: collections.Counter[str]

    @property
    def rps(self) -> float:
        return self.answered / self.seconds


def measure(
    make_client: Callable[[], Client], clients: int, requests: int, warmup: int = WARMUP_REQUESTS,
) -> Measurement:
    """`clients` threads, each with its own client, send requests // clients requests back to back; timing starts
    when every thread has sent its `warmup` untimed requests."""
    per_thread = max(1, requests // clients)
    ready = threading.Barrier(clients + 1)

    def worker(thread: int, client: Client) -> tuple[list[float], collections.Counter[str]]:
        latencies, failures = [], collections.Counter()
        try:
            for index in range(warmup):
                with contextlib.suppress(Exception):  # a failing server shows in the timed requests' failures
                    client.send(index)
            ready.wait()
            for index in range(thread * per_thread, (thread + 1) * per_thread):
                started = time.perf_counter()
                try:
                    client.send(index)
                except Exception as error:  # noqa: BLE001 (counted by kind, whatever it is: the table shows them)
                    failures[failure_kind(error)] += 1
                    continue
                latencies.append((time.perf_counter() - started) * 1000)
        finally:
            client.close()
        return latencies, failures

    with ThreadPoolExecutor(clients) as pool:
        futures = [pool.submit(worker, thread, make_client()) for thread in range(clients)]
        ready.wait()
        started = time.perf_counter()
        results = [future.result() for future in futures]
        elapsed = time.perf_counter() - started
    latencies = np.concatenate([np.array(times) for times, _ in results])
    failures = sum((counts for _, counts in results), collections.Counter())
    p50, p99 = np.percentile(latencies, [50, 99]) if len(latencies) else (np.nan, np.nan)
    return Measurement(float(p50), float(p99), len(latencies), elapsed, failures)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", choices=MODELS, default=MODELS[0], help="the model served (default %(default)s)")
    parser.add_argument("--requests", type=int, default=5000, help="requests per figure (default %(default)s)")
    parser.add_argument("--robustness", action=argparse.BooleanOptionalAction, default=True,
                        help="run the new-connection-per-request REST pass (default: on)")
    parser.add_argument("--robustness-requests", type=int, default=20000, help="its requests (default %(default)s)")
    parser.add_argument("--server-flag", action="append", default=[], metavar="--FLAG=VALUE",
                        help="a tensorflow_model_server flag for both servers, e.g. --server-flag="
                             "--grpc_max_threads=64 (repeatable; default: none, TF Serving's defaults)")
    batching = parser.add_argument_group("batching on (written with render_batching_config)")
    batching.add_argument("--max-batch-size", type=int, default=32,
                          help="32 clients' batch-1 requests fit in one batch (default %(default)s)")
    batching.add_argument("--batch-timeout-micros", type=int, default=0,
                          help="0 on CPU, as TF Serving's batching guide starts (default %(default)s)")
    batching.add_argument("--max-enqueued-batches", type=int, default=64,
                          help="room for 32 clients even if each request were its own batch (default %(default)s)")
    batching.add_argument("--num-batch-threads", type=int, default=os.cpu_count() or 1,
                          help="one per core on CPU (default: this machine's, %(default)s)")
    args = parser.parse_args()
    batching_options = {"max_batch_size": args.max_batch_size, "batch_timeout_micros": args.batch_timeout_micros,
                        "max_enqueued_batches": args.max_enqueued_batches,
                        "num_batch_threads": args.num_batch_threads}

    with tempfile.TemporaryDirectory() as folder:
        folder = Path(folder)
        training = {"dataset": "digits", "epochs": 2} if args.model == "mnist_cnn" else {"epochs": 1}
        run = tfzoo.train(args.model, **training, run_dir=folder / "run", verbose=0)
        version_dir = tfzoo.export(run, folder / "models")
        configs = write_serving_configs(folder / "models", folder / "config")
        batching_file = folder / "config" / "benchmark_batching.config"
        batching_file.write_text(render_batching_config(**batching_options))
        work = workload(args.model, run)
        signature = tf.saved_model.load(str(version_dir), tags=["serve"]).signatures[work.signature]
        bodies, protos = work.rest_bodies(), work.protos()

        print(f"{args.model} ({work.signature}), batch-1 requests, about {args.requests} per figure; "
              f"{os.cpu_count()} CPUs "
              f"({platform.processor() or platform.machine()}), TensorFlow {tf.__version__}, "
              f"grpcio {grpc.__version__}, Python {platform.python_version()}")
        print("batching on: " + ", ".join(f"{key} {value}" for key, value in batching_options.items()))
        print("server flags: " + (" ".join(args.server_flag) or "none (TF Serving's defaults)"))
        print(f"{'path':10} {'batching':>8} {'clients':>7} {'p50 ms':>8} {'p99 ms':>8} {'req/s':>8} "
              f"{'vs in-process':>13} {f'vs in-proc@{GOAL_CLIENTS}':>13}  failures", flush=True)
        results: dict[tuple[str, str, int], Measurement] = {}

        def record(name: str, batching: str, clients: int, make_client: Callable[[], Client]) -> None:
            """Measure one row and print it at once (the in-process rows come first, so its ratios are known)."""
            m = results[name, batching, clients] = measure(make_client, clients, args.requests)
            same = m.rps / results["in-process", "-", clients].rps
            failures = ", ".join(f"{kind}: {count}" for kind, count in sorted(m.failures.items())) or "0"
            print(f"{name:10} {batching:>8} {clients:7d} {m.p50_ms:8.2f} {m.p99_ms:8.2f} {m.rps:8.0f} "
                  f"{same:12.2f}x {m.rps / results['in-process', '-', GOAL_CLIENTS].rps:12.2f}x  {failures}",
                  flush=True)

        for clients in sorted(CONCURRENCY, key=lambda n: n != GOAL_CLIENTS):  # @8 first: every row's ratio needs it
            record("in-process", "-", clients, lambda: InProcess(signature, work))
        robust: Measurement | None = None
        for batching in ("off", "on"):
            flags = [f"--model_config_file={configs['models.config']}", *args.server_flag]
            if batching == "on":
                flags += ["--enable_batching=true", f"--batching_parameters_file={batching_file}"]
            with server_process(*flags) as (rest_port, grpc_port):
                for name, make_client in [("gRPC", lambda: GrpcClient(grpc_port, protos)),
                                          ("REST", lambda: RestClient(rest_port, args.model, bodies))]:
                    for clients in CONCURRENCY:
                        record(name, batching, clients, make_client)
                if batching == "on" and args.robustness:
                    robust = measure(lambda: RestClient(rest_port, args.model, bodies, reuse=False), ROBUSTNESS_CLIENTS,
                                     args.robustness_requests, warmup=0)

    print("the issue's goals, batching on, throughput vs in-process at the same concurrency:")
    for name, clients, goal, above in [("gRPC", GOAL_CLIENTS, 0.8, False), ("REST", GOAL_CLIENTS, 0.5, False),
                                       ("gRPC", 32, 1.0, True), ("REST", 32, 1.0, True)]:
        ratio = results[name, "on", clients].rps / results["in-process", "-", clients].rps
        met = ratio > goal if above else ratio >= goal
        print(f"  {name} at {clients} clients {'>' if above else '>='} {goal}x: {ratio:.2f}x, "
              f"{'met' if met else 'NOT met'}")

    if robust is not None:
        failed = sum(robust.failures.values())
        print(f"robustness: {robust.answered + failed} REST predicts from {ROBUSTNESS_CLIENTS} threads, a new "
              f"connection each, to the batching server in {robust.seconds:.1f} s: {failed} failed (goal: 0)")
        for kind, count in robust.failures.most_common():
            print(f"  {kind}: {count}")


if __name__ == "__main__":
    main()
