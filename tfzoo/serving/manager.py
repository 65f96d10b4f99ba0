"""The models a server serves, as TF Serving's ServerCore manages them: versions, policies, labels, reloads.

A ModelManager follows each model's base path (every child folder whose whole name is an integer is a version),
loads the versions the model's version policy asks for as Servables (warm-up included), unloads the others
once their replacements are available, and answers every API call that names a model with a ModelSpec:
Predict, Classify, Regress, MultiInference, GetModelMetadata, GetModelStatus and ReloadConfig. Failures are
ServingError with TF Serving's status codes and messages; the front ends only translate wire formats.
"""
from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import grpc
from tensorflow_serving.apis import (
    classification_pb2,
    get_model_metadata_pb2,
    get_model_status_pb2,
    inference_pb2,
    model_pb2,
    predict_pb2,
    regression_pb2,
    status_pb2,
)
from tensorflow_serving.config import file_system_storage_path_source_pb2, model_server_config_pb2

from tfzoo.serving.batching import BatchingOptions, BatchScheduler
from tfzoo.serving.classify_regress import run_classify, run_regress
from tfzoo.serving.config import check_model_name, parse_model_config
from tfzoo.serving.layout import scan_versions
from tfzoo.serving.loader import load_servable
from tfzoo.serving.metrics import MetricRegistry, ServingMetrics
from tfzoo.serving.multi_inference import run_multi_inference
from tfzoo.serving.options import DEFAULT_MAX_REQUEST_BYTES
from tfzoo.serving.predict import run_predict
from tfzoo.serving.protocol.status import ServingError, code_from_value, invalid_argument
from tfzoo.serving.servable import Servable, check_metadata_fields

logger = logging.getLogger(__name__)

TENSORFLOW_PLATFORM = "tensorflow"
_State = get_model_status_pb2.ModelVersionStatus.State
_OK = grpc.StatusCode.OK.value[0]
ModelConfigs = Sequence[model_server_config_pb2.ModelConfig]
_VersionPolicy = file_system_storage_path_source_pb2.FileSystemStoragePathSourceConfig.ServableVersionPolicy


@dataclass(frozen=True)
class ServingOptions:
    """How versions are loaded and answered: tensorflow_model_server's flags of the same meaning."""

    warm_up: bool = True  # --enable_model_warmup
    tensor_content: bool = False  # --enable_serialization_as_tensor_content
    intra_op_threads: int = 0  # --tensorflow_intra_op_parallelism (0: TensorFlow chooses)
    inter_op_threads: int = 0  # --tensorflow_inter_op_parallelism (0: TensorFlow chooses)
    batching: BatchingOptions | None = None  # --enable_batching with its --batching_parameters_file (None: unbatched)
    xla: bool = False  # --xla_cpu_compilation_enabled (a version whose graph needs XLA fails to load without it)
    # --max_request_bytes, which also bounds what a request's tensors may declare (`limits`)
    max_request_bytes: int = DEFAULT_MAX_REQUEST_BYTES


def read_model_config(path: str | os.PathLike[str]) -> list[model_server_config_pb2.ModelConfig]:
    """The model configs of a models.config file (ModelServerConfig text format), checked as TF Serving does."""
    config = parse_model_config(Path(path).read_text(encoding="utf-8"), source=str(path))
    models = list(config.model_config_list.config)
    check_model_configs(models)
    return models


def check_model_configs(models: ModelConfigs) -> None:
    """ValueError with TF Serving's message for a config list it refuses (ValidateModelConfigList, GetPlatform)."""
    names: set[str] = set()
    for model in models:
        if model.name in names:
            raise ValueError(f"Illegal to list model {model.name} multiple times in config list")
        names.add(model.name)
        if not os.path.isabs(model.base_path):
            raise ValueError(f"Expected model {model.name} to have an absolute path or URI; got "
                             f"base_path()={model.base_path}")
        if model.model_platform not in ("", TENSORFLOW_PLATFORM):
            raise ValueError(f"PlatformConfigMap has no entry for platform {model.model_platform}")


def check_base_paths(models: ModelConfigs) -> None:
    """At start: ValueError for a local base path that is a file (TF Serving would log a filesystem error at every
    poll and serve nothing); one warning naming a base path that does not exist yet, which is then followed as TF
    Serving follows it (a version exported there later is served)."""
    for model in models:
        path = Path(model.base_path)
        if path.exists() and not path.is_dir():
            raise ValueError(f"the base path of model {model.name}, {path}, is a file, not a folder; pass the folder "
                             "that holds its version folders (FOLDER/1/saved_model.pb, FOLDER/2/...)")
        if not path.exists():
            logger.warning("the base path of model %s, %s, does not exist: nothing is served for it until a version "
                           "folder appears there (%s/1/saved_model.pb); fix the path if that is not what you meant",
                           model.name, path, path)


def model_config(name: str, base_path: str | os.PathLike[str]) -> model_server_config_pb2.ModelConfig:
    """The one-model config that --model_name and --model_base_path stand for (the latest version served)."""
    check_model_name(name, "--model_name")
    return model_server_config_pb2.ModelConfig(name=name, base_path=os.path.abspath(base_path),
                                               model_platform=TENSORFLOW_PLATFORM)


def aspired_versions(policy: _VersionPolicy, on_disk: Sequence[int]) -> set[int]:
    """The versions among `on_disk` that a TF Serving version policy serves (default: the latest one)."""
    choice = policy.WhichOneof("policy_choice")
    if choice == "all":
        return set(on_disk)
    if choice == "specific":
        return set(policy.specific.versions) & set(on_disk)
    newest = max(policy.latest.num_versions, 1) if choice == "latest" else 1
    return set(sorted(on_disk)[-newest:])


@dataclass(eq=False)
class _Model:
    """A configured model: its loaded versions and the state of every version it has seen (TF Serving's
    ServableStateMonitor). `available` is replaced, never mutated, so a request keeps the version it resolved
    while a newer one is swapped in; an unloaded Servable's session closes once no request holds it."""

    config: model_server_config_pb2.ModelConfig
    available: dict[int, Servable] = field(default_factory=dict)
    states: dict[int, get_model_status_pb2.ModelVersionStatus] = field(default_factory=dict)


class ModelManager:
    """Loads the models of a config list, follows their base paths, and answers requests that name them."""

    def __init__(self, configs: ModelConfigs, options: ServingOptions = ServingOptions(),
                 metrics: ServingMetrics | None = None):
        check_model_configs(configs)
        check_base_paths(configs)
        self.options = options
        self.metrics = metrics or ServingMetrics(MetricRegistry())
        # One scheduler for every model and version, as TF Serving shares its batch threads across the server.
        self._batch_scheduler = BatchScheduler(options.batching, self.metrics) if options.batching else None
        self._models = {config.name: _Model(config) for config in configs}
        self._lock = threading.Lock()  # guards _models and each model's `available` and `states`
        self._refresh_lock = threading.Lock()  # one refresh or reload at a time

    @property
    def model_names(self) -> list[str]:
        """Names of the configured models."""
        with self._lock:
            return sorted(self._models)

    def refresh(self) -> None:
        """Scan every base path once; load newly aspired versions, unload those the policy no longer serves."""
        with self._refresh_lock:
            with self._lock:
                models = list(self._models.values())
            for model in models:
                self._refresh_model(model)

    def reload_config(self, configs: ModelConfigs) -> None:
        """Serve exactly these models from now on (ServerCore::ReloadConfig): new models are loaded before this
        returns, removed ones unloaded, and kept ones follow their new version policy and labels."""
        check_model_configs(configs)
        names = {config.name for config in configs}
        with self._refresh_lock:
            with self._lock:
                removed = [self._models.pop(name) for name in list(self._models) if name not in names]
                for config in configs:  # a kept model keeps its versions; a new one is added after the kept ones
                    self._models.setdefault(config.name, _Model(config)).config = config
                models = list(self._models.values())
            for model in removed:
                logger.info("model %s removed from the config: unloading it", model.config.name)
                for version in model.states:
                    self.metrics.remove_version(model.config.name, version)
            for model in models:
                self._refresh_model(model)
        self.check_version_labels()

    def check_version_labels(self) -> None:
        """FAILED_PRECONDITION, as ServerCore::UpdateModelVersionLabelMap, for a label on a version not available."""
        with self._lock:
            labelled = [(model.config.name, label, version, version in model.available)
                        for model in self._models.values() for label, version in model.config.version_labels.items()]
        for name, _, version, available in sorted(labelled):
            if not available:
                raise ServingError(grpc.StatusCode.FAILED_PRECONDITION,
                                   f"Request to assign label to version {version} of model {name}, which is not "
                                   f"currently available for inference")

    def unload_all(self) -> None:
        """Unload every version and stop the batch threads once their queued requests are answered (at shutdown)."""
        with self._lock:
            for model in self._models.values():
                model.available = {}
        if self._batch_scheduler is not None:
            self._batch_scheduler.stop()

    # --- the API calls ---------------------------------------------------------------------------------------

    def predict(self, request: predict_pb2.PredictRequest, timeout_ms: int = 0,
                tensor_content: bool | None = None) -> predict_pb2.PredictResponse:
        """PredictionService.Predict; outputs as raw bytes when `tensor_content` (None: as the server's option)."""
        servable = self.resolve(_required_spec(request))
        tensor_content = self.options.tensor_content if tensor_content is None else tensor_content
        return run_predict(servable, request, tensor_content=tensor_content, timeout_ms=timeout_ms)

    def classify(self, request: classification_pb2.ClassificationRequest,
                 timeout_ms: int = 0) -> classification_pb2.ClassificationResponse:
        """PredictionService.Classify."""
        return run_classify(self.resolve(_required_spec(request)), request, timeout_ms)

    def regress(self, request: regression_pb2.RegressionRequest,
                timeout_ms: int = 0) -> regression_pb2.RegressionResponse:
        """PredictionService.Regress."""
        return run_regress(self.resolve(_required_spec(request)), request, timeout_ms)

    def multi_inference(self, request: inference_pb2.MultiInferenceRequest,
                        timeout_ms: int = 0) -> inference_pb2.MultiInferenceResponse:
        """PredictionService.MultiInference: the model is the first task's (an empty spec when there is none)."""
        spec = request.tasks[0].model_spec if request.tasks else model_pb2.ModelSpec()
        return run_multi_inference(self.resolve(spec), request, timeout_ms)

    def metadata(self, request: get_model_metadata_pb2.GetModelMetadataRequest
                 ) -> get_model_metadata_pb2.GetModelMetadataResponse:
        """PredictionService.GetModelMetadata."""
        spec = _required_spec(request)
        check_metadata_fields(request.metadata_field)  # checked before the model is looked up, as TF Serving does
        return self.resolve(spec).metadata(list(request.metadata_field))

    def status(self, request: get_model_status_pb2.GetModelStatusRequest
               ) -> get_model_status_pb2.GetModelStatusResponse:
        """ModelService.GetModelStatus: one version's state, or every version seen (a label is not resolved)."""
        spec = _required_spec(request)
        with self._lock:
            model = self._models.get(spec.name)
            states = dict(model.states) if model else {}
        if spec.WhichOneof("version_choice") == "version":
            if spec.version.value not in states:
                raise ServingError(grpc.StatusCode.NOT_FOUND,
                                   f"Could not find version {spec.version.value} of model {spec.name}")
            versions = [spec.version.value]
        elif not states:
            raise ServingError(grpc.StatusCode.NOT_FOUND, f"Could not find any versions of model {spec.name}")
        else:
            versions = sorted(states, reverse=True)
        return get_model_status_pb2.GetModelStatusResponse(model_version_status=[states[v] for v in versions])

    def resolve(self, spec: model_pb2.ModelSpec) -> Servable:
        """The loaded version a ModelSpec asks for: its version, its label's version, or the latest."""
        if not spec.name:
            raise invalid_argument("ModelSpec has no name specified.")
        with self._lock:
            model = self._models.get(spec.name)
            available = model.available if model else {}
            labels = dict(model.config.version_labels) if model else {}
        choice = spec.WhichOneof("version_choice")
        if choice == "version_label":
            if spec.version_label not in labels:
                raise invalid_argument(f"Unrecognized servable version label: {spec.version_label}")
            version = labels[spec.version_label]
        elif choice == "version":
            version = spec.version.value
        else:
            if not available:
                raise ServingError(grpc.StatusCode.NOT_FOUND, f"Servable not found for request: Latest({spec.name})")
            return available[max(available)]
        if version not in available:
            raise ServingError(grpc.StatusCode.NOT_FOUND,
                               f"Servable not found for request: Specific({spec.name}, {version})")
        return available[version]

    # --- loading ---------------------------------------------------------------------------------------------

    def _refresh_model(self, model: _Model) -> None:
        on_disk = scan_versions(model.config.base_path)
        aspired = aspired_versions(model.config.model_version_policy, sorted(on_disk))
        with self._lock:
            loaded = set(model.available)
            failed = {v for v, s in model.states.items() if s.status.error_code != _OK}
        new = {}
        for version in sorted(aspired - loaded - failed):
            self._set_state(model, version, _State.LOADING)
            started = time.monotonic()
            try:
                new[version] = load_servable(
                    on_disk[version], model.config.name, version, warm_up=self.options.warm_up,
                    intra_op_threads=self.options.intra_op_threads, inter_op_threads=self.options.inter_op_threads,
                    batching=self._batch_scheduler, metrics=self.metrics,
                    xla_cpu_compilation_enabled=self.options.xla, max_request_bytes=self.options.max_request_bytes)
            except Exception as error:  # any broken export: report it, keep serving the rest
                self.metrics.record_load(str(on_disk[version]), False, time.monotonic() - started)
                code, message = _load_error(error)
                logger.error("model %s version %d failed to load: %s", model.config.name, version, message)
                self._set_state(model, version, _State.END, code, message)
            else:
                self.metrics.record_load(str(on_disk[version]), True, time.monotonic() - started)
                logger.info("model %s version %d loaded from %s", model.config.name, version, on_disk[version])
        retired = loaded - aspired
        if not new and not retired:
            return
        with self._lock:  # one step, so status never disagrees with what requests are served by
            model.available = {v: s for v, s in {**model.available, **new}.items() if v not in retired}
            model.states.update({v: _version_status(v, _State.AVAILABLE) for v in new})
            model.states.update({v: _version_status(v, _State.END) for v in retired})
        for version in sorted(new):
            self.metrics.set_version_state(model.config.name, version, "AVAILABLE")
        for version in sorted(retired):
            self.metrics.set_version_state(model.config.name, version, "END")
            logger.info("model %s version %d unloaded", model.config.name, version)

    def _set_state(self, model: _Model, version: int, state: int,
                   code: grpc.StatusCode = grpc.StatusCode.OK, message: str = "") -> None:
        with self._lock:
            model.states[version] = _version_status(version, state, code, message)
        self.metrics.set_version_state(model.config.name, version, _State.Name(state))


def _required_spec(request) -> model_pb2.ModelSpec:
    if not request.HasField("model_spec"):
        raise invalid_argument("Missing ModelSpec")
    return request.model_spec


def _load_error(error: Exception) -> tuple[grpc.StatusCode, str]:
    if isinstance(error, ServingError):
        return error.code, error.message
    code = code_from_value(getattr(error, "error_code", None))
    return code, getattr(error, "message", None) or f"{type(error).__name__}: {error}"


def _version_status(version: int, state: int, code: grpc.StatusCode = grpc.StatusCode.OK,
                    message: str = "") -> get_model_status_pb2.ModelVersionStatus:
    status = status_pb2.StatusProto(error_code=code.value[0], error_message=message)
    return get_model_status_pb2.ModelVersionStatus(version=version, state=state, status=status)
