"""`tfzoo serve`: tensorflow_model_server's gRPC and REST APIs, for laptops and tests.

    tfzoo serve --model_name=mnist --model_base_path=/models/mnist --rest_api_port=8501
    tfzoo serve --model_config_file=models.config --model_config_file_poll_wait_seconds=60 --rest_api_port=8501

It takes tensorflow_model_server's flags with their defaults (gRPC on --port 8500; REST only with
--rest_api_port), loads versions as TF Serving's SavedModelBundle does (`loader.py`: TF1 and TF2 exports,
warm-up replay), answers with its wire formats (`protocol/`), follows base paths every
--file_system_poll_wait_seconds (a version renamed into place is served without a restart, versions the policy
no longer asks for are unloaded) and, with --model_config_file_poll_wait_seconds, the config file itself.
With --enable_batching, requests are merged into batches as TF Serving's BatchingSession merges them
(`batching.py`, parameters from --batching_parameters_file); with --monitoring_config_file enabling Prometheus,
the REST port serves TF Serving's metrics (`metrics.py`). REST runs on an HTTP/1.1 server with keep-alive, a
bounded worker pool (--rest_api_num_threads) and header/body/idle deadlines (`http_server.py`). SIGTERM stops
accepting on both ports and answers the requests in flight, for up to --rest_api_timeout_in_ms; a REST request
not answered by then (or only partly received) gets a 503 JSON error, never a bare close.

Where it differs from TF Serving (also listed in the README):
- It binds 127.0.0.1 unless --host says otherwise (TF Serving listens on every interface).
- Batching never lets one request change another's answer: requests whose non-batch dimensions differ are
  batched apart (unless pad_variable_length_inputs), and a batch whose run fails is rerun one request at a
  time (TF Serving fails the whole batch in both cases). --enable_per_model_batching_params is not taken.
- A gRPC call past its deadline ends with DEADLINE_EXCEEDED, but its graph run is not cut short
  (TF Serving's --enforce_session_run_timeout); --rest_api_timeout_in_ms does bound REST graph runs.
- A version that fails to load is not retried (TF Serving retries --max_num_load_retries times); export it
  again under a new version number.
- The server's own HTTP errors (malformed requests, oversized heads or bodies, deadlines, 503 beyond its
  connection limit) and a path outside /v1/ get TF Serving's JSON error body (TF Serving's HTTP layer answers
  those with an empty or HTML body); bodies over --max_request_bytes get 413, which is also gRPC's largest
  accepted message. Metrics are TF Serving's names for what tfzoo records (request counts and latencies,
  runtime latency, batching, warm-up, SavedModel loads) plus tfzoo's model_version_state; TensorFlow's own
  op-level metrics are not exported.
- No request can exhaust the server's memory (`limits.py`; TF Serving allocates and runs whatever a request
  declares): tensors declaring more values than --max_request_bytes (TensorFlow fills in the values a
  TensorProto leaves out, so 42 bytes can declare 627 MB) and tf.Examples whose context, copied into each,
  would pass it are refused as INVALID_ARGUMENT; unbatched, a request over 4 MiB of input runs in slices of
  rows when every tensor of its signature has a batch dimension.
- Only local base paths (TF Serving also reads gs://, s3://, hdfs://); no TFLite, SSL, Unix-socket, profiler or
  --allow_version_labels_for_unavailable_models flags.
"""
from __future__ import annotations

import contextlib
import logging
import os
import signal
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator, Sequence
from types import TracebackType

import grpc

from tfzoo.serving.grpc_service import create_grpc_server
from tfzoo.serving.http_server import HttpOptions, HttpServer
from tfzoo.serving.manager import ModelManager, ServingOptions
from tfzoo.serving.metrics import MetricRegistry, ServingMetrics
from tfzoo.serving.options import DEFAULT_HOST, ServerOptions
from tfzoo.serving.protocol.status import ServingError
from tfzoo.serving.rest import RestApi, error_response

logger = logging.getLogger(__name__)


class ModelServer:
    """TF Serving's gRPC (and, with a REST port, REST) API for the models the options name.

    After start(), `port` and `rest_api_port` hold the bound ports. Use start() and stop(), or a with-block.
    """

    def __init__(self, options: ServerOptions):
        options.check()
        batching = options.batching_options()  # each flag file read (and checked) once, before any model loads
        self._metrics_path = options.metrics_path()
        self.options = options
        self.metrics = ServingMetrics(MetricRegistry())
        self.manager = ModelManager(options.model_configs(), ServingOptions(
            warm_up=options.enable_model_warmup,
            tensor_content=options.enable_serialization_as_tensor_content,
            intra_op_threads=options.intra_op_parallelism,
            inter_op_threads=options.inter_op_parallelism,
            batching=batching,
            xla=options.xla_cpu_compilation_enabled,
            max_request_bytes=options.max_request_bytes,
        ), self.metrics)
        self.port = options.port
        self.rest_api_port = options.rest_api_port
        self._grpc: grpc.Server | None = None
        self._rest: HttpServer | None = None
        self._stop = threading.Event()
        self._pollers: list[threading.Thread] = []
        self._config_mtime = self._read_config_mtime()

    def start(self) -> None:
        """Load the models' current versions, then open the ports and start following base paths and config."""
        self.manager.refresh()  # as in TF Serving, the first versions load before the ports open
        try:
            self.manager.check_version_labels()
        except ServingError as error:  # TF Serving does not start either
            raise ValueError(error.message) from None
        o = self.options
        self._grpc, self.port = create_grpc_server(self.manager, o.host, o.port, o.max_request_bytes,
                                                   o.grpc_max_threads)
        if o.rest_api_port is not None:
            api = RestApi(self.manager, o.rest_api_timeout_in_ms, self._metrics_path)
            try:
                self._rest = HttpServer(api.handle, error_response, o.host, o.rest_api_port, HttpOptions(
                    max_body_bytes=o.max_request_bytes, workers=o.rest_api_num_threads))
            except OSError:
                self._grpc.stop(None)
                raise
            self.rest_api_port = self._rest.port
            self._rest.start()
        self._grpc.start()
        if o.file_system_poll_wait_seconds > 0:
            self._poll(o.file_system_poll_wait_seconds, self.manager.refresh, "tfzoo-serve-fs-poll")
        if o.model_config_file and o.model_config_file_poll_wait_seconds > 0:
            self._poll(o.model_config_file_poll_wait_seconds, self._reload_changed_config, "tfzoo-serve-config-poll")

    def stop(self) -> None:
        """Stop accepting requests on both ports at once, answer those in flight (within --rest_api_timeout_in_ms),
        stop polling, unload the models."""
        self._stop.set()
        grace_s = self.options.rest_api_timeout_in_ms / 1000
        grpc_stopped = self._grpc.stop(grace_s) if self._grpc is not None else None
        if self._rest is not None:
            self._rest.stop(grace_s)
        if grpc_stopped is not None:
            grpc_stopped.wait()
        for poller in self._pollers:
            poller.join()
        self.manager.unload_all()

    def __enter__(self) -> ModelServer:
        self.start()
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 traceback: TracebackType | None) -> None:
        self.stop()

    def _poll(self, seconds: float, action, name: str) -> None:
        def loop() -> None:
            while not self._stop.wait(seconds):
                try:
                    action()
                except Exception:  # a bad scan or config must not end polling for good
                    logger.exception("%s failed; trying again in %.1f s", name, seconds)

        thread = threading.Thread(target=loop, name=name, daemon=True)
        thread.start()
        self._pollers.append(thread)

    def _read_config_mtime(self) -> int | None:
        try:
            return os.stat(self.options.model_config_file).st_mtime_ns if self.options.model_config_file else None
        except OSError:
            return None

    def _reload_changed_config(self) -> None:
        mtime = self._read_config_mtime()
        if mtime is not None and mtime != self._config_mtime:
            self._config_mtime = mtime
            logger.info("%s changed: reloading the model list", self.options.model_config_file)
            self.manager.reload_config(self.options.model_configs())


def serve(options: ServerOptions) -> None:
    """Run a ModelServer until SIGTERM or SIGINT, then stop it cleanly and return. Call from the main thread.

    Prints the served models and the bound addresses on stdout once the ports accept requests.
    """
    stop_requested = threading.Event()
    # Installed before loading, so a signal during a slow load also ends in a clean stop.
    previous = {sig: signal.signal(sig, lambda *_: stop_requested.set()) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        server = ModelServer(options)
        server.start()
        try:
            print(f"tfzoo serve: models {', '.join(server.manager.model_names)}", flush=True)
            print(f"tfzoo serve: gRPC on {options.host}:{server.port}", flush=True)
            if server.rest_api_port is not None:
                print(f"tfzoo serve: REST on http://{options.host}:{server.rest_api_port}", flush=True)
            # Wake up now and then: a signal that lands on one of gRPC's threads cannot interrupt a plain wait(),
            # and Python runs its handler only when the main thread runs.
            while not stop_requested.wait(timeout=0.5):
                pass
            logger.info("stopping: finishing requests in flight")
        finally:
            server.stop()
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def free_port(host: str = DEFAULT_HOST) -> int:
    """A TCP port nothing listens on now (as TF Serving's own tests pick theirs)."""
    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as probe:
        probe.bind((host, 0))
        return probe.getsockname()[1]


@contextlib.contextmanager
def server_process(*flags: str, host: str = DEFAULT_HOST, ready_timeout: float = 120.0) -> Iterator[tuple[int, int]]:
    """`tfzoo serve FLAGS...` in a child process on free ports; yields (rest_api_port, port) once it answers.

    Stops it with SIGTERM on exit. A separate process keeps the server's threads off the caller's GIL, as for
    a real TF Serving.
    """
    with server_child(*flags, host=host, ready_timeout=ready_timeout) as (_, rest_port, grpc_port):
        yield rest_port, grpc_port


@contextlib.contextmanager
def server_child(
    *flags: str, host: str = DEFAULT_HOST, ready_timeout: float = 120.0, prefix: Sequence[str] = (),
) -> Iterator[tuple[subprocess.Popen[str], int, int]]:
    """server_process, yielding (process, rest_api_port, port): for callers that watch the server's CPU time and
    memory. `prefix` runs it under a command that execs the server, such as `taskset -c 1`, so the process is
    still the server's."""
    rest_port, grpc_port = free_port(host), free_port(host)
    process = subprocess.Popen(
        [*prefix, sys.executable, "-m", "tfzoo", "serve", *flags, f"--host={host}", f"--port={grpc_port}",
         f"--rest_api_port={rest_port}"], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    try:
        timer = threading.Timer(ready_timeout, process.kill)
        timer.start()
        try:
            for line in process.stdout:
                if line.startswith("tfzoo serve: REST on"):
                    break
            else:
                raise RuntimeError(f"tfzoo serve exited with status {process.wait()} before it was ready")
        finally:
            timer.cancel()
        yield process, rest_port, grpc_port
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
