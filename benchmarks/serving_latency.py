"""Serving speed at 1, 8 and 32 clients: in-process vs `tfzoo serve` over gRPC and REST, batching off and on;
--pinned: the server on one core, driven by wrk and h2load from the other.

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

Pinned mode (--pinned, mnist_cnn): the server alone on core 1 (`taskset -c 1 tfzoo serve`), C load generators
alone on core 0 (one thread each), so client work no longer takes the server's CPU: wrk for REST (a Lua script
POSTs {"instances": [one image]} to /v1/models/mnist_cnn:predict), h2load for gRPC (HTTP/2 POSTs to
/tensorflow.serving.PredictionService/Predict, the body a length-prefixed PredictRequest). At 8 and 32
connections, batching off and on (on: max_batch_size 32, batch_timeout_micros 1000, num_batch_threads 1, the
batching options' --pinned defaults, and 32 gRPC and REST threads: a batch gathers only the requests the server's
threads hold, 4 per core by default, which would cap batches at 8 on this machine), --duration seconds per run
and --runs runs each: req/s, p50/p99 (wrk's own; gRPC's from h2load's per-request log, as h2load prints no
percentiles), the server's CPU time (/proc/PID/stat)
per request and its RSS before and after. The server's own Prometheus request_count, read before and after each
run, checks that every request was answered OK (a gRPC error is still HTTP 200 to h2load); any other status and
any generator error (non-2xx, socket errors, timeouts) is listed at the end. For comparison, first the
SavedModel's serving_default called back to back in a child process on core 1 with 1, 8 and 32 images per call
(batch 1 is a request's work; 8 and 32 show the room batching has), per example. Needs 2 cores and
`apt-get install -y wrk nghttp2-client`; takes about 5 minutes at the defaults (22 runs of 10 s, the training,
2 server starts). --ceiling adds both servers again with every graph run answered from a cache of its first
answer for those shapes (batching "off, c" and "on, c"): what the server itself costs per request, and so the most
it could answer.

    .venv/bin/python benchmarks/serving_latency.py                 # --requests 5000 --robustness-requests 20000
    .venv/bin/python benchmarks/serving_latency.py --pinned        # --duration 10 --runs 2
    .venv/bin/python benchmarks/serving_latency.py --pinned --duration 2 --runs 1   # a quick check
    .venv/bin/python benchmarks/serving_latency.py --pinned --ceiling   # + both servers with no graph work
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
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import NoReturn, Protocol

import grpc
import numpy as np
import tensorflow as tf
from tensorflow_serving.apis import predict_pb2, prediction_service_pb2_grpc

import tfzoo
from tfzoo import cli
from tfzoo.datasets import load_dataset
from tfzoo.serving.config import DEFAULT_METRICS_PATH, render_batching_config, write_serving_configs
from tfzoo.serving.servable import Servable
from tfzoo.serving.server import server_child, server_process
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
# --pinned: the server (and the in-process loop) on one core, the load generators on another
SERVER_CORE, CLIENT_CORE = 1, 0
PINNED_CONNECTIONS = (8, 32)
IN_PROCESS_BATCHES = (1, 8, 32)  # batch 1 is what a served request runs; 8 and 32 show the room batching has
PINNED_TOOLS = ("wrk", "h2load", "taskset")
PINNED_INSTALL = "apt-get install -y wrk nghttp2-client"  # taskset is util-linux, on every Debian
PINNED_WARMUP_SECONDS = 1  # per protocol and server, untimed: connections, first graph runs
CACHED_GRAPH_SERVER = "--cached-graph-server"  # --ceiling's server child (cached_graph_server)


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


# ----------------------------------------------------------------------------------------------------- the model


@dataclass
class Prepared:
    """The trained, exported model and the server's configuration files, in `folder`."""

    folder: Path
    version_dir: Path
    configs: dict[str, Path]
    batching_file: Path
    batching_summary: str
    work: Workload

    def server_flags(self, batching: bool) -> list[str]:
        flags = [f"--model_config_file={self.configs['models.config']}"]
        if batching:
            flags += ["--enable_batching=true", f"--batching_parameters_file={self.batching_file}"]
        return flags


def prepare(args: argparse.Namespace, folder: Path) -> Prepared:
    """Train and export --model, write the serving configs and the batching file of the batching options."""
    training = {"dataset": "digits", "epochs": 2} if args.model == "mnist_cnn" else {"epochs": 1}
    run = tfzoo.train(args.model, **training, run_dir=folder / "run", verbose=0)
    version_dir = tfzoo.export(run, folder / "models")
    configs = write_serving_configs(folder / "models", folder / "config")
    batching_options = {"max_batch_size": args.max_batch_size, "batch_timeout_micros": args.batch_timeout_micros,
                        "max_enqueued_batches": args.max_enqueued_batches,
                        "num_batch_threads": args.num_batch_threads}
    batching_file = folder / "config" / "benchmark_batching.config"
    batching_file.write_text(render_batching_config(**batching_options))
    summary = ", ".join(f"{key} {value}" for key, value in batching_options.items())
    return Prepared(folder, version_dir, configs, batching_file, summary, workload(args.model, run))


def client_benchmark(args: argparse.Namespace, model: Prepared) -> None:
    """The default mode: Python client threads in this process, see the module docstring."""
    work = model.work
    signature = tf.saved_model.load(str(model.version_dir), tags=["serve"]).signatures[work.signature]
    bodies, protos = work.rest_bodies(), work.protos()

    print(f"{args.model} ({work.signature}), batch-1 requests, about {args.requests} per figure; "
          f"{os.cpu_count()} CPUs "
          f"({platform.processor() or platform.machine()}), TensorFlow {tf.__version__}, "
          f"grpcio {grpc.__version__}, Python {platform.python_version()}")
    print(f"batching on: {model.batching_summary}")
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
        with server_process(*model.server_flags(batching == "on"), *args.server_flag) as (rest_port, grpc_port):
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



# ----------------------------------------------------------------------------------------------------- --pinned


def check_pinned_machine() -> None:
    """Exit with one line unless the load generators are installed and there are two cores to split."""
    missing = [tool for tool in PINNED_TOOLS if shutil.which(tool) is None]
    if missing:
        sys.exit(f"serving_latency.py --pinned needs {', '.join(missing)}: {PINNED_INSTALL}")
    cores = os.sched_getaffinity(0)
    if not {SERVER_CORE, CLIENT_CORE} <= cores:
        sys.exit(f"serving_latency.py --pinned needs cores {CLIENT_CORE} and {SERVER_CORE} (one for the server, one "
                 f"for the load generators); this process may use {len(cores)}: {sorted(cores)}")


def pinned(core: int) -> list[str]:
    return ["taskset", "-c", str(core)]


@dataclass
class Load:
    """What a load generator reports for one run; latencies in ms, errors by kind (only kinds that occurred)."""

    requests: int
    seconds: float
    p50_ms: float
    p99_ms: float
    errors: dict[str, int]


def run_wrk(port: int, model: str, script: Path, connections: int, seconds: int) -> Load:
    """wrk, one thread on CLIENT_CORE: `connections` keep-alive connections POST the body of `script` (wrk_script)
    back to back; the script's done() prints the figures as JSON."""
    out = subprocess.run(
        [*pinned(CLIENT_CORE), "wrk", "-t", "1", "-c", str(connections), "-d", f"{seconds}s", "-s", str(script),
         f"http://{HOST}:{port}/v1/models/{model}:predict"],
        capture_output=True, text=True, check=True, timeout=seconds + 60).stdout
    result = json.loads(out.strip().splitlines()[-1])
    return Load(result["requests"], result["duration_us"] / 1e6, result["p50_us"] / 1000, result["p99_us"] / 1000,
                {kind: result[kind] for kind in ("connect", "read", "write", "not 2xx/3xx", "timeout") if result[kind]})


def wrk_script(path: Path, body: str) -> Path:
    """A wrk Lua script: POST `body` as JSON; done() prints requests, duration, p50/p99 and errors by kind as one
    JSON line."""
    path.write_text(f"""wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.body = [==[{body}]==]
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format('{{"requests": %d, "duration_us": %d, "p50_us": %d, "p99_us": %d, "connect": %d, ' ..
    '"read": %d, "write": %d, "not 2xx/3xx": %d, "timeout": %d}}\\n', summary.requests, summary.duration,
    latency:percentile(50), latency:percentile(99), e.connect, e.read, e.write, e.status, e.timeout))
end
""")
    return path


def run_h2load(port: int, body: Path, connections: int, seconds: int) -> Load:
    """h2load, one thread on CLIENT_CORE: `connections` HTTP/2 connections, one stream each, POST the gRPC
    message in `body` to PredictionService/Predict back to back. h2load prints no percentiles, so p50/p99 come
    from its per-request log (--log-file: start, HTTP status, microseconds). A gRPC error is still HTTP 200
    (grpc-status is in the trailers): the server's request_count is the real check."""
    log = body.with_suffix(".log")
    log.unlink(missing_ok=True)  # h2load appends to its log: without this, a row's latencies would hold every run's
    out = subprocess.run(
        [*pinned(CLIENT_CORE), "h2load", "-t", "1", "-c", str(connections), "-m", "1", "-D", str(seconds),
         "-d", str(body), "-H", "content-type: application/grpc", "-H", "te: trailers", f"--log-file={log}",
         f"http://{HOST}:{port}/tensorflow.serving.PredictionService/Predict"],
        capture_output=True, text=True, check=True, timeout=seconds + 60).stdout
    finished = re.search(r"finished in ([\d.]+)s", out)
    counts = re.search(r"requests: (\d+) total, \d+ started, (\d+) done, \d+ succeeded, (\d+) failed, "
                       r"(\d+) errored, (\d+) timeout", out)
    statuses = re.search(r"status codes: \d+ 2xx, (\d+) 3xx, (\d+) 4xx, (\d+) 5xx", out)
    if not (finished and counts and statuses):
        raise RuntimeError(f"unexpected h2load output:\n{out}")
    microseconds = np.loadtxt(log, usecols=2, ndmin=1)
    p50, p99 = np.percentile(microseconds, [50, 99]) / 1000 if len(microseconds) else (np.nan, np.nan)
    errors = dict(zip(("failed", "errored", "timeout", "3xx", "4xx", "5xx"),
                      map(int, [*counts.groups()[2:], *statuses.groups()])))
    return Load(int(counts[2]), float(finished[1]), float(p50), float(p99),
                {kind: count for kind, count in errors.items() if count})


def request_counts(rest_port: int) -> collections.Counter[str]:
    """The server's own count of answered requests, from its Prometheus page: request_count by status
    ("status OK") and the OK ones' request_latency count by entrypoint ("entrypoint GRPC")."""
    with urllib.request.urlopen(f"http://{HOST}:{rest_port}{DEFAULT_METRICS_PATH}", timeout=TIMEOUT) as response:
        page = response.read().decode()
    counts: collections.Counter[str] = collections.Counter()
    for name, label, value in re.findall(r'^:tensorflow:serving:(?:request_count|request_latency_count)\{[^}]*'
                                         r'\b(status|entrypoint)="([^"]*)"\} (\d+)$', page, re.M):
        counts[f"{name} {label}"] += int(value)
    return counts


def process_usage(pid: int) -> tuple[float, int]:
    """(CPU seconds, user and system, of all its threads; resident memory in bytes) of a process, from /proc."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    cpu = (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime, stime: fields 14 and 15
    rss_kb = next(int(line.split()[1]) for line in Path(f"/proc/{pid}/status").read_text().splitlines()
                  if line.startswith("VmRSS:"))
    return cpu, rss_kb * 1024


@dataclass
class PinnedRun:
    load: Load
    cpu_s: float  # the server's, over the run
    rss_before: int
    rss_after: int
    counted: collections.Counter[str]  # the server's request counts over the run

    @property
    def rps(self) -> float:
        return self.load.requests / self.load.seconds

    @property
    def cpu_ms_per_request(self) -> float:
        return self.cpu_s * 1000 / max(1, sum(n for key, n in self.counted.items() if key.startswith("status ")))


def pinned_run(pid: int, rest_port: int, generate: Callable[[], Load]) -> PinnedRun:
    """One generator run, with the server's request counts, CPU time and memory read before and after (the
    metrics page is read outside the CPU window: it costs the server a render)."""
    counts_before = request_counts(rest_port)
    cpu_before, rss_before = process_usage(pid)
    load = generate()
    cpu_after, rss_after = process_usage(pid)
    return PinnedRun(load, cpu_after - cpu_before, rss_before, rss_after, request_counts(rest_port) - counts_before)


def in_process_loop(version_dir: str, images_file: str, batch: int, seconds: int) -> None:
    """The child of --pinned's in-process rows, run on SERVER_CORE: serving_default called back to back on
    `batch` images for `seconds`; prints calls, seconds, p50/p99 per call and its CPU seconds as one JSON line."""
    function = tf.saved_model.load(version_dir, tags=["serve"]).signatures["serving_default"]
    images = np.load(images_file)[:batch]
    for _ in range(20):  # untimed: the first graph runs
        function(image=tf.constant(images))
    latencies = []
    cpu_before, started = sum(os.times()[:2]), time.perf_counter()
    while time.perf_counter() - started < seconds:
        call_started = time.perf_counter()
        function(image=tf.constant(images))  # from NumPy, as the server's requests and InProcess.send
        latencies.append(time.perf_counter() - call_started)
    elapsed, cpu = time.perf_counter() - started, sum(os.times()[:2]) - cpu_before
    p50, p99 = np.percentile(latencies, [50, 99]) * 1000
    print(json.dumps({"calls": len(latencies), "seconds": elapsed, "p50_ms": p50, "p99_ms": p99, "cpu_s": cpu}))


def pinned_benchmark(args: argparse.Namespace, model: Prepared) -> None:
    """--pinned: see the module docstring."""
    os.sched_setaffinity(0, {CLIENT_CORE})  # this process reads metrics between runs: off the server's core
    folder = model.folder
    images_file = folder / "images.npy"
    np.save(images_file, np.concatenate([inputs["image"] for inputs in model.work.inputs]))
    script = wrk_script(folder / "predict.lua", json.dumps({"instances": model.work.inputs[0]["image"].tolist()}))
    message = model.work.protos()[0].SerializeToString()
    grpc_body = folder / "predict.grpc"
    grpc_body.write_bytes(b"\0" + len(message).to_bytes(4, "big") + message)  # gRPC framing: uncompressed, length

    print(f"{args.model} (serving_default) pinned: server and in-process on core {SERVER_CORE}, wrk and h2load "
          f"(one thread each) on core {CLIENT_CORE}; {args.duration} s per run, {args.runs} runs each; "
          f"{os.cpu_count()} CPUs ({platform.processor() or platform.machine()}), "
          f"TensorFlow {tf.__version__}, Python {platform.python_version()}")
    print(f"batching on: --enable_batching=true with {model.batching_summary}")
    print(f"{'path':14} {'batching':>8} {'conns':>5} {'run':>3} {'req/s':>8} {'vs in-proc b1':>13} {'p50 ms':>7} "
          f"{'p99 ms':>7} {'CPU ms/req':>10} {'RSS MB before->after':>20}  server counts; generator errors",
          flush=True)
    problems: list[str] = []
    in_process_rps: dict[int, list[float]] = collections.defaultdict(list)
    for batch in IN_PROCESS_BATCHES:
        for run in range(1, args.runs + 1):
            out = subprocess.run(
                [*pinned(SERVER_CORE), sys.executable, __file__, "--in-process-loop", str(model.version_dir),
                 str(images_file), "--batch", str(batch), "--duration", str(args.duration)],
                capture_output=True, text=True, check=True, timeout=args.duration + 300).stdout
            result = json.loads(out.strip().splitlines()[-1])
            examples = result["calls"] * batch
            in_process_rps[batch].append(examples / result["seconds"])
            print(f"{f'in-process b{batch}':14} {'-':>8} {'-':>5} {run:3d} {in_process_rps[batch][-1]:8.0f} "
                  f"{in_process_rps[batch][-1] / np.mean(in_process_rps[1]):12.2f}x {result['p50_ms']:7.2f} "
                  f"{result['p99_ms']:7.2f} {result['cpu_s'] * 1000 / examples:10.3f} {'-':>20}  "
                  f"(per example; latency per call of {batch})", flush=True)
    baseline = np.mean(in_process_rps[1])

    servers = [("off", False), ("on", False), *([("off", True), ("on", True)] if args.ceiling else [])]
    for batching, cached in servers:
        flags = [*model.server_flags(batching == "on"), *args.server_flag,
                 f"--monitoring_config_file={model.configs['monitoring.config']}"]  # request_count, the check
        if batching == "on":  # a batch gathers only the requests in the server's threads: one per connection
            flags += [f"--grpc_max_threads={max(PINNED_CONNECTIONS)}",
                      f"--rest_api_num_threads={max(PINNED_CONNECTIONS)}"]
        prefix = pinned(SERVER_CORE)
        if cached:
            print(f"--ceiling: the server with batching {batching} again, every graph run answered from its cache "
                  "(no TensorFlow work)")
            batching, prefix = f"{batching}, c", [*prefix, sys.executable, __file__, CACHED_GRAPH_SERVER]
        with server_child(*flags, prefix=prefix) as (process, rest_port, grpc_port):
            generators = {"gRPC (h2load)": lambda conns, seconds: run_h2load(grpc_port, grpc_body, conns, seconds),
                          "REST (wrk)": lambda conns, seconds: run_wrk(rest_port, args.model, script, conns, seconds)}
            for generate in generators.values():
                generate(PINNED_CONNECTIONS[0], PINNED_WARMUP_SECONDS)
            for name, generate in generators.items():
                for conns in PINNED_CONNECTIONS:
                    for run in range(1, args.runs + 1):
                        r = pinned_run(process.pid, rest_port, lambda: generate(conns, args.duration))
                        counts = ", ".join(f"{key} {n}" for key, n in sorted(r.counted.items())) or "none"
                        errors = ", ".join(f"{kind} {n}" for kind, n in r.load.errors.items()) or "0 errors"
                        print(f"{name:14} {batching:>8} {conns:5d} {run:3d} {r.rps:8.0f} {r.rps / baseline:12.2f}x "
                              f"{r.load.p50_ms:7.2f} {r.load.p99_ms:7.2f} {r.cpu_ms_per_request:10.3f} "
                              f"{f'{r.rss_before / 2**20:.0f} -> {r.rss_after / 2**20:.0f}':>20}  {counts}; {errors}",
                              flush=True)
                        row = f"{name} batching {batching}, {conns} connections, run {run}"
                        problems += [f"{row}: server counted {n} {key}" for key, n in r.counted.items()
                                     if key.startswith("status ") and key != "status OK"]
                        problems += [f"{row}: {name} reports {n} {kind}" for kind, n in r.load.errors.items()]
    print("requests not OK (server's request_count) and generator errors: " + ("none" if not problems else ""))
    for problem in problems:
        print(f"  {problem}")


def cached_graph_server(argv: list[str]) -> NoReturn:
    """--ceiling's server, run as `serving_latency.py CACHED_GRAPH_SERVER python -m tfzoo serve FLAGS...`: `tfzoo
    serve` with each graph run answered from a cache of the first run of the same feeds' shapes and fetches, so
    its rows measure what the server costs per request before any TensorFlow work: the most it could answer."""
    run = Servable._run_session  # noqa: SLF001 (the one graph run that every API and batching go through)
    answers: dict[tuple, list[np.ndarray]] = {}

    def cached(self: Servable, feeds: dict[str, np.ndarray], fetches: Sequence[str], timeout_ms: int):
        key = (tuple((name, value.shape) for name, value in sorted(feeds.items())), tuple(fetches))
        if key not in answers:
            answers[key] = run(self, feeds, fetches, timeout_ms)
        return answers[key]

    Servable._run_session = cached  # noqa: SLF001
    sys.exit(cli.main(argv[argv.index("serve"):]))


def main() -> None:
    if sys.argv[1:2] == [CACHED_GRAPH_SERVER]:  # before argparse: the rest are the server's flags
        cached_graph_server(sys.argv[2:])
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", choices=MODELS, default=MODELS[0], help="the model served (default %(default)s)")
    parser.add_argument("--requests", type=int, default=5000, help="requests per figure (default %(default)s)")
    parser.add_argument("--robustness", action=argparse.BooleanOptionalAction, default=True,
                        help="run the new-connection-per-request REST pass (default: on)")
    parser.add_argument("--robustness-requests", type=int, default=20000, help="its requests (default %(default)s)")
    parser.add_argument("--server-flag", action="append", default=[], metavar="--FLAG=VALUE",
                        help="a tensorflow_model_server flag for both servers, e.g. --server-flag="
                             "--grpc_max_threads=64 (repeatable; default: none, TF Serving's defaults)")
    pinned_mode = parser.add_argument_group("--pinned: server on one core, wrk and h2load on another (mnist_cnn)")
    pinned_mode.add_argument("--pinned", action="store_true", help=f"this mode instead of the Python clients "
                             f"(needs 2 cores and wrk, h2load, taskset: {PINNED_INSTALL})")
    pinned_mode.add_argument("--duration", type=int, default=10, help="seconds per run (default %(default)s)")
    pinned_mode.add_argument("--runs", type=int, default=2, help="runs of each row (default %(default)s)")
    pinned_mode.add_argument("--ceiling", action="store_true",
                             help="also both servers with their graph runs answered from a cache: what the server "
                                  "costs per request before any TensorFlow work")
    # The in-process rows' child process (started by --pinned on the server's core): VERSION_DIR IMAGES.npy.
    parser.add_argument("--in-process-loop", nargs=2, help=argparse.SUPPRESS)
    parser.add_argument("--batch", type=int, default=1, help=argparse.SUPPRESS)
    batching = parser.add_argument_group("batching on (written with render_batching_config)")
    batching.add_argument("--max-batch-size", type=int, default=32,
                          help="32 clients' batch-1 requests fit in one batch (default %(default)s)")
    batching.add_argument("--batch-timeout-micros", type=int,
                          help="0 on CPU, as TF Serving's batching guide starts; --pinned: 1000, where one core "
                               "answers requests in turn and a batch needs a moment to fill (default 0, 1000)")
    batching.add_argument("--max-enqueued-batches", type=int, default=64,
                          help="room for 32 clients even if each request were its own batch (default %(default)s)")
    batching.add_argument("--num-batch-threads", type=int,
                          help=f"one per core on CPU (default: this machine's, {os.cpu_count()}; --pinned: 1)")
    args = parser.parse_args()
    if args.batch_timeout_micros is None:
        args.batch_timeout_micros = 1000 if args.pinned else 0
    if args.num_batch_threads is None:
        args.num_batch_threads = 1 if args.pinned else os.cpu_count() or 1
    if args.in_process_loop:
        in_process_loop(*args.in_process_loop, args.batch, args.duration)
        return
    if args.pinned:
        if args.model != "mnist_cnn":
            parser.error("--pinned measures mnist_cnn")
        check_pinned_machine()  # before the training, which takes a while

    with tempfile.TemporaryDirectory() as folder:
        model = prepare(args, Path(folder))
        (pinned_benchmark if args.pinned else client_benchmark)(args, model)


if __name__ == "__main__":
    main()
