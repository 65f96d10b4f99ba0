"""TF Serving configuration files for a model base: models.config, batching.config and monitoring.config.

The stock `tensorflow_model_server` reads them with `--model_config_file`, `--batching_parameters_file` and
`--monitoring_config_file`. All three are protocol buffers in text format; every file this module writes is
parsed back with protobuf's text-format parser against TF Serving's message definitions before it is written.
"""
from __future__ import annotations

import os
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from google.protobuf import descriptor_pb2, descriptor_pool, message, message_factory, text_format, wrappers_pb2
from tensorflow_serving.config import model_server_config_pb2

from tfzoo.files import write_text_atomic
from tfzoo.serving.layout import SAVED_MODEL_FILES, scan_versions

VERSION_POLICIES = ("latest", "all", "specific")
DEFAULT_METRICS_PATH = "/monitoring/prometheus/metrics"  # TF Serving's own (PrometheusExporter::kPrometheusPath)
MODELS_CONFIG, BATCHING_CONFIG, MONITORING_CONFIG = "models.config", "batching.config", "monitoring.config"

# TF Serving's rule for version labels; they appear in REST paths /v1/models/NAME/labels/LABEL.
_LABEL_NAME = re.compile(r"[a-zA-Z0-9_]+")
# A model name is a folder name under the model base and a REST path segment (/v1/models/NAME:predict, which
# TF Serving matches as [^/:]+ without decoding %-escapes): letters, digits, '_', '-' and '.', not first (a hidden
# folder, which the config writer and the exporter's staging folders use).
_MODEL_NAME = re.compile(r"[A-Za-z0-9_-][A-Za-z0-9._-]*")
MODEL_NAME_RULE = "letters, digits, '_', '-' and '.' (not first)"
_URI = re.compile(r"[a-z][a-z0-9+.-]*://")
_METRICS_PATH = re.compile(r"/[A-Za-z0-9._~/-]*")

# The model options of build_model_config and write_serving_configs: for every model, or per model name.
_Policy = str | Mapping[str, str]
_Versions = Sequence[int] | Mapping[str, Sequence[int]] | None
_Labels = Mapping[str, int] | Mapping[str, Mapping[str, int]] | None


class ServingConfigError(ValueError):
    """A serving configuration that TF Serving would refuse, or a model base it cannot be written for."""


# --------------------------------------------------------------------------------------------- models.config

def check_model_name(name: str, what: str = "model name") -> str:
    """`name` when it can name a served model (see _MODEL_NAME); ServingConfigError naming `what` otherwise."""
    if not isinstance(name, str) or not _MODEL_NAME.fullmatch(name):
        raise ServingConfigError(f"{what} {name!r} cannot name a served model: it is a folder name and a REST path "
                                 f"segment (/v1/models/NAME:predict), so use {MODEL_NAME_RULE}")
    return name


def discover_models(model_base: str | os.PathLike[str]) -> dict[str, list[int]]:
    """Map each model under `model_base` (MODEL_BASE/NAME/VERSION/saved_model.pb) to its sorted versions.

    Hidden folders and folders starting with "tmp" are skipped: the exporter writes a version beside its final
    place under such a name and renames it when complete. Models without any version are left out.
    """
    base = Path(model_base)
    if not base.is_dir():
        raise ServingConfigError(f"model base {base} does not exist or is not a folder; export a model into it first "
                                 f"(tfzoo export RUN_DIR --model-base {base})")
    models: dict[str, list[int]] = {}
    for model_dir in sorted(base.iterdir()):
        if not model_dir.is_dir() or model_dir.name.startswith((".", "tmp")):
            continue
        versions = scan_versions(model_dir)
        for version_dir in versions.values():
            # TF Serving would try to load such a folder (and keep failing), so it is an error, not something to skip.
            if not any((version_dir / name).is_file() for name in SAVED_MODEL_FILES):
                raise ServingConfigError(f"{version_dir} is named like a version but holds no saved_model.pb; "
                                         "TF Serving would try to load it and fail. Remove it, or export that "
                                         "version again.")
        if versions:
            models[check_model_name(model_dir.name, f"model folder {model_dir}:")] = sorted(versions)
    if not models:
        raise ServingConfigError(f"no models in {base}: expected {base}/NAME/VERSION/saved_model.pb with an integer "
                                 "VERSION folder")
    return models


def build_model_config(model_base: str | os.PathLike[str], *, version_policy: _Policy = "latest",
                       versions: _Versions = None, labels: _Labels = None,
                       base_path_prefix: str | None = None) -> model_server_config_pb2.ModelServerConfig:
    """Build TF Serving's ModelServerConfig for every model under `model_base`.

    version_policy: "latest" (the newest version only), "all", or "specific" (exactly `versions`).
    versions: the versions to serve; only with "specific".
    labels: version labels such as {"stable": 1, "canary": 2}; each must name a version the policy serves,
        because TF Serving refuses labels on versions it does not load.
    Each of the three applies to every model, or per model as a dict keyed by model name (models left out get
    "latest", no versions and no labels). Per-model `versions` with one `version_policy` for all: the models named
    serve exactly their versions ("specific"), the others follow `version_policy`.
    base_path_prefix: where the server sees the model base, e.g. "/models" inside the tensorflow/serving container
        or "gs://bucket/models"; by default the absolute local path of `model_base`.
    """
    found = discover_models(model_base)
    if isinstance(versions, Mapping) and isinstance(version_policy, str):
        version_policy = {name: "specific" if name in versions else version_policy for name in found}
    policies = _per_model("version_policy", version_policy, isinstance(version_policy, Mapping), found, "latest")
    chosen_versions = _per_model("versions", versions, isinstance(versions, Mapping), found)
    labels_are_per_model = isinstance(labels, Mapping) and any(isinstance(v, Mapping) for v in labels.values())
    model_labels = _per_model("labels", labels, labels_are_per_model, found)
    root = _base_path_root(model_base, base_path_prefix)

    config = model_server_config_pb2.ModelServerConfig()
    for name, on_disk in found.items():
        policy = policies[name]
        served = _served_versions(name, on_disk, policy, chosen_versions[name])
        model = config.model_config_list.config.add(name=name, base_path=f"{root}/{name}", model_platform="tensorflow")
        if policy == "latest":
            model.model_version_policy.latest.num_versions = 1
        elif policy == "all":
            model.model_version_policy.all.SetInParent()
        else:
            model.model_version_policy.specific.versions.extend(served)
        model.version_labels.update(_checked_labels(name, model_labels[name] or {}, on_disk, served, policy))
    return config


def render_model_config(config: model_server_config_pb2.ModelServerConfig) -> str:
    """Text format of `config`, as `--model_config_file` reads it."""
    return ("# TF Serving model config (--model_config_file), written by tfzoo serving-config.\n"
            "# Version labels on versions that are not loaded yet (e.g. at startup) need\n"
            "# --allow_version_labels_for_unavailable_models=true.\n" + text_format.MessageToString(config))


def parse_model_config(text: str, source: str = MODELS_CONFIG) -> model_server_config_pb2.ModelServerConfig:
    """Parse a models.config with TF Serving's ModelServerConfig; ServingConfigError with line and column if invalid."""
    return _parse(text, model_server_config_pb2.ModelServerConfig(), source)


def _per_model(what: str, value: Any, per_model: bool, found: Mapping[str, list[int]], default: Any = None
               ) -> dict[str, Any]:
    if not per_model:
        return {name: value for name in found}
    unknown = sorted(set(value) - set(found))
    if unknown:
        raise ServingConfigError(f"{what} names unknown model(s) {unknown}; the model base holds {sorted(found)}")
    return {name: value.get(name, default) for name in found}


def _base_path_root(model_base: str | os.PathLike[str], base_path_prefix: str | None) -> str:
    if base_path_prefix is None:
        return Path(model_base).resolve().as_posix()
    # TF Serving refuses relative base paths (ValidateModelConfigList in server_core.cc).
    if not (base_path_prefix.startswith("/") or _URI.match(base_path_prefix)):
        raise ServingConfigError(f"base_path_prefix {base_path_prefix!r} must be an absolute path such as '/models' "
                                 "or a URI such as 'gs://bucket/models': TF Serving refuses relative base paths")
    return base_path_prefix.rstrip("/")


def _served_versions(name: str, on_disk: list[int], policy: str, versions: Sequence[int] | None) -> list[int]:
    if policy not in VERSION_POLICIES:
        raise ServingConfigError(f"unknown version_policy {policy!r} for model {name!r}; use one of "
                                 f"{', '.join(VERSION_POLICIES)}")
    if policy != "specific":
        if versions is not None:
            raise ServingConfigError(f"versions {list(versions)} for model {name!r} only apply with "
                                     f"version_policy='specific' (it is {policy!r})")
        return on_disk if policy == "all" else on_disk[-1:]
    if not versions:
        raise ServingConfigError(f"version_policy='specific' for model {name!r} needs versions, e.g. "
                                 f"versions={on_disk}")
    if not all(_is_int(v) for v in versions):
        raise ServingConfigError(f"versions for model {name!r} must be integers, got {list(versions)}")
    missing = sorted(set(versions) - set(on_disk))
    if missing:
        raise ServingConfigError(f"model {name!r} has no version(s) {missing} (found {on_disk}); export them first "
                                 "or pick found versions")
    return sorted(set(versions))


def _checked_labels(name: str, labels: Mapping[str, int], on_disk: list[int], served: list[int], policy: str
                    ) -> dict[str, int]:
    for label, version in labels.items():
        if not isinstance(label, str) or not _LABEL_NAME.fullmatch(label):
            raise ServingConfigError(f"version label {label!r} of model {name!r} is not allowed: TF Serving labels "
                                     "are [a-zA-Z0-9_]+")
        if not _is_int(version):
            raise ServingConfigError(f"label {label!r} of model {name!r} must name an integer version, got {version!r}")
        where = f"label {label!r} of model {name!r} points at version {version}"
        if version not in on_disk:
            raise ServingConfigError(f"{where}, which does not exist (found {on_disk})")
        if version not in served:
            raise ServingConfigError(f"{where}, but version_policy {policy!r} serves only {served}; TF Serving refuses "
                                     f"labels on versions it does not load. Use version_policy='specific' with "
                                     f"versions that include {version}.")
    return dict(labels)


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


# ------------------------------------------------------------------------- batching.config, monitoring.config

# tensorflow-serving-api does not ship the BatchingParameters and MonitoringConfig messages, so they are declared
# here field for field as in TF Serving's session_bundle_config.proto and monitoring_config.proto. Files are then
# checked by protobuf's own text-format parser, the one TF Serving uses, against the real names and types.
_TF_SERVING_MESSAGES = {
    "BatchingParameters": """
        google.protobuf.Int64Value max_batch_size = 1;
        google.protobuf.Int64Value batch_timeout_micros = 2;
        google.protobuf.Int64Value max_enqueued_batches = 3;
        google.protobuf.Int64Value num_batch_threads = 4;
        google.protobuf.StringValue thread_pool_name = 5;
        google.protobuf.BoolValue enable_large_batch_splitting = 8;
        google.protobuf.Int64Value max_execution_batch_size = 9;
        repeated int64 allowed_batch_sizes = 6;
        bool pad_variable_length_inputs = 7;
    """,
    "PrometheusConfig": "bool enable = 1; string path = 2;",
    "MonitoringConfig": "PrometheusConfig prometheus_config = 1;",
}
_SCALAR_TYPES = {name: descriptor_pb2.FieldDescriptorProto.Type.Value(f"TYPE_{name.upper()}")
                 for name in ("bool", "int64", "string")}
# The least value TF Serving's batch scheduler accepts for each of these BatchingParameters fields.
_BATCHING_MINIMUMS = {"max_batch_size": 1, "batch_timeout_micros": 0, "max_enqueued_batches": 1,
                      "num_batch_threads": 1, "max_execution_batch_size": 1}


def _tf_serving_message_classes() -> tuple[type[message.Message], type[message.Message]]:
    # A private pool, so these declarations can never clash with a real tensorflow_serving module.
    pool = descriptor_pool.DescriptorPool()
    pool.AddSerializedFile(wrappers_pb2.DESCRIPTOR.serialized_pb)
    file = descriptor_pb2.FileDescriptorProto(name="tfzoo/serving/tf_serving_configs.proto",
                                              package="tensorflow.serving", syntax="proto3",
                                              dependency=[wrappers_pb2.DESCRIPTOR.name])
    for name, fields in _TF_SERVING_MESSAGES.items():
        declared = file.message_type.add(name=name)
        for declaration in fields.split(";")[:-1]:  # proto field declarations, each ending in ';'
            *repeated, type_name, field_name, _, number = declaration.split()
            field = declared.field.add(name=field_name, number=int(number))
            field.label = field.LABEL_REPEATED if repeated else field.LABEL_OPTIONAL
            field.type = _SCALAR_TYPES.get(type_name, field.TYPE_MESSAGE)
            if field.type == field.TYPE_MESSAGE:
                field.type_name = "." + (type_name if "." in type_name else f"{file.package}.{type_name}")
    pool.Add(file)
    return tuple(message_factory.GetMessageClass(pool.FindMessageTypeByName(f"tensorflow.serving.{name}"))
                 for name in ("BatchingParameters", "MonitoringConfig"))


BatchingParameters, MonitoringConfig = _tf_serving_message_classes()


def render_batching_config(*, max_batch_size: int = 128, batch_timeout_micros: int = 0, max_enqueued_batches: int = 100,
                           num_batch_threads: int | None = None, allowed_batch_sizes: Sequence[int] = (),
                           pad_variable_length_inputs: bool = False) -> str:
    """Text of a BatchingParameters file for `--enable_batching=true --batching_parameters_file=...`.

    The defaults are the CPU starting point of TF Serving's batching guide; num_batch_threads defaults to the
    number of cores of this machine, so pass the serving machine's core count when that is another machine.
    """
    threads = num_batch_threads if num_batch_threads is not None else os.cpu_count() or 1
    lines = [
        "# TF Serving batching parameters (--enable_batching=true --batching_parameters_file=...).",
        "# Tuning, after TF Serving's batching guide (tensorflow_serving/batching/README.md):",
        "# - num_batch_threads: on CPU, the number of cores of the serving machine.",
        "# - max_batch_size: the largest batch one thread runs; larger batches raise throughput,",
        "#   and the latency of the requests that wait to fill them. A batch gathers only the requests the",
        "#   server's threads hold: raise --grpc_max_threads and --rest_api_num_threads (4 per core by",
        "#   default) to the concurrent requests you expect.",
        "# - batch_timeout_micros: how long a partial batch waits for more requests. Start at 0 on CPU,",
        "#   then try 1000-10000 (1-10 ms) and keep what meets your latency goal.",
        "# - max_enqueued_batches: queued batches beyond this are refused (UNAVAILABLE) instead of waiting.",
        "#   Online serving behind a load balancer: about num_batch_threads; bulk jobs: as high as memory allows.",
        "# - allowed_batch_sizes (optional): pad batches up to these sizes; the last must equal max_batch_size.",
        f"max_batch_size {{ value: {max_batch_size} }}",
        f"batch_timeout_micros {{ value: {batch_timeout_micros} }}",
        f"max_enqueued_batches {{ value: {max_enqueued_batches} }}",
        f"num_batch_threads {{ value: {threads} }}",
        *(f"allowed_batch_sizes: {size}" for size in allowed_batch_sizes),
    ]
    if pad_variable_length_inputs:
        lines.append("pad_variable_length_inputs: true")
    text = "\n".join(lines) + "\n"
    parse_batching_config(text, source="render_batching_config()")
    return text


def parse_batching_config(text: str, source: str = BATCHING_CONFIG) -> message.Message:
    """Parse and check a BatchingParameters file the way TF Serving would; ServingConfigError if it would refuse it."""
    params = _parse(text, BatchingParameters(), source)
    problems = [f"{field} must be at least {minimum}, got {getattr(params, field).value}"
                for field, minimum in _BATCHING_MINIMUMS.items()
                if params.HasField(field) and getattr(params, field).value < minimum]
    sizes = list(params.allowed_batch_sizes)
    if sizes:
        if sizes[0] < 1 or any(later <= earlier for earlier, later in zip(sizes, sizes[1:])):
            problems.append(f"allowed_batch_sizes must be positive and increasing, got {sizes}")
        # batching_session.cc: the largest allowed size is the largest batch the session may run.
        limit = "max_execution_batch_size" if params.enable_large_batch_splitting.value else "max_batch_size"
        if not params.HasField(limit) or getattr(params, limit).value != sizes[-1]:
            problems.append(f"the last allowed_batch_sizes entry ({sizes[-1]}) must equal {limit}")
    if problems:
        raise ServingConfigError(f"{source}: TF Serving would refuse these batching parameters: {'; '.join(problems)}")
    return params


def render_monitoring_config(path: str = DEFAULT_METRICS_PATH) -> str:
    """Text of a MonitoringConfig file for `--monitoring_config_file`: Prometheus metrics at `path` on the REST port."""
    _check_metrics_path(path, source="render_monitoring_config()")
    text = ("# TF Serving monitoring config (--monitoring_config_file): Prometheus metrics are served on the\n"
            f"# REST port, e.g. http://localhost:8501{path}\n"
            "prometheus_config {\n"
            "  enable: true\n"
            f'  path: "{path}"\n'
            "}\n")
    parse_monitoring_config(text, source="render_monitoring_config()")
    return text


def parse_monitoring_config(text: str, source: str = MONITORING_CONFIG) -> message.Message:
    """Parse and check a MonitoringConfig file; ServingConfigError if it is not one TF Serving can use."""
    config = _parse(text, MonitoringConfig(), source)
    if config.prometheus_config.path:  # empty means TF Serving's default path
        _check_metrics_path(config.prometheus_config.path, source)
    return config


def _check_metrics_path(path: str, source: str) -> None:
    if not _METRICS_PATH.fullmatch(path):
        raise ServingConfigError(f"{source}: Prometheus path {path!r} must be a URL path starting with '/', such as "
                                 f"{DEFAULT_METRICS_PATH!r}")


# ------------------------------------------------------------------------------------------------ all three

def write_serving_configs(model_base: str | os.PathLike[str], out_dir: str | os.PathLike[str], *,
                          version_policy: _Policy = "latest", versions: _Versions = None, labels: _Labels = None,
                          base_path_prefix: str | None = None, metrics_path: str = DEFAULT_METRICS_PATH,
                          **batching: Any) -> dict[str, Path]:
    """Write models.config, batching.config and monitoring.config into `out_dir`; return {file name: path}.

    The model options are those of build_model_config, `batching` the keyword arguments of render_batching_config.
    Each file is replaced atomically, so a server polling it never reads half a file.
    """
    # Render all three first: a bad option then leaves out_dir as it was.
    config = build_model_config(model_base, version_policy=version_policy, versions=versions, labels=labels,
                                base_path_prefix=base_path_prefix)
    texts = {MODELS_CONFIG: render_model_config(config), BATCHING_CONFIG: render_batching_config(**batching),
             MONITORING_CONFIG: render_monitoring_config(metrics_path)}
    return {name: write_text_atomic(Path(out_dir) / name, text) for name, text in texts.items()}


def _parse(text: str, into: message.Message, source: str) -> message.Message:
    try:
        return text_format.Parse(text, into)
    except text_format.ParseError as error:
        detail = str(error).removeprefix(f"{error.GetLine()}:{error.GetColumn()} : ")
        raise ServingConfigError(
            # TF Serving's own wording (ParseProtoTextFile), with the file and the place in it.
            f"{source}: Error parsing text-format {into.DESCRIPTOR.full_name}: line {error.GetLine()}, "
            f"column {error.GetColumn()}: {detail}"
        ) from error
