"""tensorflow_model_server's options and their defaults, as `tfzoo serve` takes them. Kept apart from server.py,
which needs TensorFlow, so that `tfzoo serve --help` lists them without importing it."""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from tfzoo.serving.batching import BatchingOptions
from tfzoo.serving.config import parse_batching_config, parse_monitoring_config
from tfzoo.serving.metrics import PROMETHEUS_PATH

DEFAULT_MAX_REQUEST_BYTES = 32 * 2**20  # --max_request_bytes: the largest gRPC message and REST body
DEFAULT_TIMEOUT_MS = 30_000  # --rest_api_timeout_in_ms
DEFAULT_HOST = "127.0.0.1"
DEFAULT_GRPC_PORT = 8500


@dataclass
class ServerOptions:
    """tensorflow_model_server's options (the flag of the same name, less `tensorflow_`), plus `host`.

    Models: `model_config_file`, or `model_name` + `model_base_path`. Ports may be 0 to pick free ones;
    `rest_api_port` None serves no REST API (the flag's 0).
    """

    model_name: str = "default"
    model_base_path: str = ""
    model_config_file: str = ""
    model_config_file_poll_wait_seconds: float = 0.0  # 0: read the config file once
    file_system_poll_wait_seconds: float = 1.0  # 0: look at the base paths once
    host: str = DEFAULT_HOST
    port: int = DEFAULT_GRPC_PORT
    rest_api_port: int | None = None
    rest_api_timeout_in_ms: int = DEFAULT_TIMEOUT_MS
    rest_api_num_threads: int = field(default_factory=lambda: 4 * (os.cpu_count() or 1))
    grpc_max_threads: int = field(default_factory=lambda: 4 * (os.cpu_count() or 1))
    enable_batching: bool = False
    batching_parameters_file: str = ""
    monitoring_config_file: str = ""
    enable_model_warmup: bool = True
    enable_serialization_as_tensor_content: bool = False
    xla_cpu_compilation_enabled: bool = False
    intra_op_parallelism: int = 0
    inter_op_parallelism: int = 0
    max_request_bytes: int = DEFAULT_MAX_REQUEST_BYTES

    def check(self) -> None:
        """ValueError with TF Serving's message (Server::BuildAndStart) for options it refuses, then one naming a
        flag file that does not exist."""
        if not self.model_base_path and not self.model_config_file:
            raise ValueError("Both server_options.model_base_path and server_options.model_config_file are empty!")
        if self.batching_parameters_file and not self.enable_batching:
            raise ValueError("server_options.batching_parameters_file is set without setting "
                             "server_options.enable_batching to true.")
        if self.port != 0 and self.rest_api_port == self.port:  # None (no REST API) never equals a port
            raise ValueError(f"--rest_api_port must be different from --port (both are {self.port})")
        for name in ("model_config_file", "batching_parameters_file", "monitoring_config_file"):
            path = getattr(self, name)
            if path and not Path(path).is_file():
                raise ValueError(f"--{name}={path}: no such file; pass the path of an existing file")

    def batching_options(self) -> BatchingOptions | None:
        """What --enable_batching and --batching_parameters_file ask for (None: unbatched), as server.cc reads them."""
        if not self.enable_batching:
            return None
        if not self.batching_parameters_file:  # TF Serving's scheduler defaults, on its own thread pool name
            return BatchingOptions(thread_pool_name="model_server_batch_threads")
        text = Path(self.batching_parameters_file).read_text(encoding="utf-8")
        return BatchingOptions.from_parameters(parse_batching_config(text, source=self.batching_parameters_file))

    def metrics_path(self) -> str | None:
        """Where the REST port serves Prometheus metrics, as --monitoring_config_file asks (None: nowhere)."""
        if not self.monitoring_config_file:
            return None
        text = Path(self.monitoring_config_file).read_text(encoding="utf-8")
        prometheus = parse_monitoring_config(text, source=self.monitoring_config_file).prometheus_config
        return (prometheus.path or PROMETHEUS_PATH) if prometheus.enable else None

    def model_configs(self) -> list:
        """The ModelConfigs to serve: the config file's, or the one --model_name/--model_base_path make."""
        from tfzoo.serving.manager import model_config, read_model_config  # TensorFlow: only when serving

        if self.model_config_file:
            return read_model_config(self.model_config_file)
        return [model_config(self.model_name, self.model_base_path)]
