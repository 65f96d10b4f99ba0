"""tfzoo.serving.config and serving/: the files stock TF Serving reads, checked against its own fixtures and flags."""
import os
import re
from pathlib import Path

import pytest
from conftest import TF_SERVING_TESTDATA

from tfzoo.serving.config import (
    DEFAULT_METRICS_PATH,
    ServingConfigError,
    build_model_config,
    discover_models,
    parse_batching_config,
    parse_model_config,
    parse_monitoring_config,
    render_batching_config,
    render_model_config,
    render_monitoring_config,
    write_serving_configs,
)

REPO = Path(__file__).resolve().parents[1]
SERVING = REPO / "serving"
TESTDATA = TF_SERVING_TESTDATA

# Every flag of tensorflow_model_server, as main.cc (tensorflow/serving, 2.20+) declares them.
TF_SERVING_FLAGS = {
    "allow_version_labels_for_unavailable_models", "batching_parameters_file", "enable_batching",
    "enable_grpc_healthcheck_service", "enable_model_warmup", "enable_per_model_batching_parameters",
    "enable_profiler", "enable_serialization_as_tensor_content", "enable_signature_method_name_check",
    "file_system_poll_wait_seconds", "flush_filesystem_caches", "grpc_channel_arguments", "grpc_max_threads",
    "grpc_socket_path", "load_retry_interval_micros", "max_num_load_retries", "mixed_precision",
    "model_base_path", "model_config_file", "model_config_file_poll_wait_seconds", "model_name",
    "monitoring_config_file", "num_load_threads", "num_request_iterations_for_warmup",
    "num_tflite_interpreters_per_pool", "num_tflite_pools", "num_unload_threads",
    "per_process_gpu_memory_fraction", "platform_config_file", "port", "prefer_tflite_model",
    "remove_unused_fields_from_bundle_metagraph", "rest_api_enable_cors_support", "rest_api_num_threads",
    "rest_api_port", "rest_api_timeout_in_ms", "saved_model_tags", "skip_initialize_tpu", "ssl_config_file",
    "tensorflow_inter_op_parallelism", "tensorflow_intra_op_parallelism", "tensorflow_session_config_file",
    "tensorflow_session_parallelism", "thread_pool_factory_config_file", "use_alts_credentials", "version",
    "xla_cpu_compilation_enabled", "xla_gpu_compilation_enabled",
}
# What the checked-in example serves (see serving/README.md).
EXAMPLE = {"versions": [1, 2], "labels": {"stable": 1, "canary": 2}}


def make_base(root: Path, models: dict[str, list[int]]) -> Path:
    """A model base whose versions hold an (empty) saved_model.pb: enough for the config writer."""
    for name, versions in models.items():
        for version in versions:
            (root / name / str(version)).mkdir(parents=True)
            (root / name / str(version) / "saved_model.pb").touch()
    return root


# ------------------------------------------------------------------------------------------- discover_models

def test_discover_models_reads_tf_serving_fixtures():
    assert discover_models(TESTDATA) == {
        "saved_model_half_plus_three": [123],
        "saved_model_half_plus_two_2_versions": [123, 124],
        "saved_model_half_plus_two_cpu": [123],
    }


def test_discover_models_skips_temporary_hidden_and_non_version_folders(tmp_path):
    base = make_base(tmp_path, {"m": [10, 2], "tmp_export": [1], ".hidden": [1], "no_versions": []})
    for scratch in ("m/.tmp-3-x1y2", "m/tmp4", "m/latest", "no_versions/.tmp-1-abcd"):
        (base / scratch).mkdir(parents=True)
        (base / scratch / "saved_model.pb").touch()
    (base / "models.config").write_text("")
    assert discover_models(base) == {"m": [2, 10]}


def test_discover_models_rejects_a_missing_or_empty_base(tmp_path):
    with pytest.raises(ServingConfigError, match="does not exist"):
        discover_models(tmp_path / "nowhere")
    with pytest.raises(ServingConfigError, match=r"no models in .*NAME/VERSION/saved_model\.pb"):
        discover_models(tmp_path)


def test_discover_models_rejects_a_version_folder_without_a_saved_model(tmp_path):
    base = make_base(tmp_path, {"m": [1]})
    (base / "m" / "2").mkdir()
    with pytest.raises(ServingConfigError, match=r"m/2 is named like a version but holds no saved_model\.pb"):
        discover_models(base)


# --------------------------------------------------------------------------------------------- models.config

@pytest.mark.parametrize(
    "policy, versions, labels, served",
    [
        ("latest", None, {"stable": 3}, [3]),
        ("all", None, {"old": 1, "new": 3}, [1, 2, 3]),
        ("specific", [3, 1], {"stable": 1, "canary": 3}, [1, 3]),
    ],
)
def test_model_config_round_trips_through_tf_serving_proto(tmp_path, policy, versions, labels, served):
    base = make_base(tmp_path, {"m": [1, 2, 3]})
    built = build_model_config(base, version_policy=policy, versions=versions, labels=labels)
    parsed = parse_model_config(render_model_config(built))

    assert parsed == built
    (model,) = parsed.model_config_list.config
    assert model.name == "m"
    assert model.base_path == str(base.resolve() / "m")
    assert model.model_platform == "tensorflow"
    assert model.model_version_policy.WhichOneof("policy_choice") == policy
    if policy == "latest":
        assert model.model_version_policy.latest.num_versions == 1
    if policy == "specific":
        assert list(model.model_version_policy.specific.versions) == served
    assert dict(model.version_labels) == labels


def test_base_path_prefix_is_where_the_server_sees_the_model_base(tmp_path):
    base = make_base(tmp_path, {"m": [1]})
    for prefix, expected in [("/models/", "/models/m"), ("gs://bucket/models", "gs://bucket/models/m")]:
        (model,) = build_model_config(base, base_path_prefix=prefix).model_config_list.config
        assert model.base_path == expected
    with pytest.raises(ServingConfigError, match="must be an absolute path.*refuses relative base paths"):
        build_model_config(base, base_path_prefix="models")


def test_options_can_be_given_per_model(tmp_path):
    base = make_base(tmp_path, {"a": [1, 2], "b": [5, 6]})
    config = build_model_config(
        base, version_policy={"a": "specific"}, versions={"a": [1, 2]}, labels={"a": {"stable": 1, "canary": 2}}
    )
    a, b = config.model_config_list.config
    assert (a.name, list(a.model_version_policy.specific.versions), dict(a.version_labels)) == (
        "a", [1, 2], {"stable": 1, "canary": 2}
    )
    assert (b.name, b.model_version_policy.latest.num_versions, dict(b.version_labels)) == ("b", 1, {})
    with pytest.raises(ServingConfigError, match=r"labels names unknown model\(s\) \['c'\].*\['a', 'b'\]"):
        build_model_config(base, labels={"c": {"stable": 1}})


@pytest.mark.parametrize(
    "options, message",
    [
        ({"version_policy": "newest"}, "unknown version_policy 'newest' for model 'm'; use one of latest, all"),
        ({"labels": {"canary": 9}}, r"label 'canary' of model 'm' points at version 9, which does not exist"),
        ({"labels": {"stable": 1}}, r"policy 'latest' serves only \[3\]; TF Serving refuses .* that include 1"),
        ({"version_policy": "specific", "versions": [1], "labels": {"canary": 3}}, r"serves only \[1\]"),
        ({"version_policy": "specific"}, r"needs versions, e.g. versions=\[1, 2, 3\]"),
        ({"versions": [1]}, "only apply with version_policy='specific'"),
        ({"version_policy": "specific", "versions": [1, 7]}, r"has no version\(s\) \[7\] \(found \[1, 2, 3\]\)"),
        ({"version_policy": "all", "labels": {"can-ary": 1}}, r"TF Serving labels are \[a-zA-Z0-9_\]\+"),
    ],
)
def test_build_model_config_names_the_problem(tmp_path, options, message):
    base = make_base(tmp_path, {"m": [1, 2, 3]})
    with pytest.raises(ServingConfigError, match=message):
        build_model_config(base, **options)


def test_tf_serving_good_model_config_parses_and_bad_one_is_rejected():
    good = parse_model_config((TESTDATA / "good_model_config.txt").read_text())
    assert [(c.name, c.model_platform) for c in good.model_config_list.config] == [
        ("half_plus_two", "tensorflow"),
        ("half_plus_three", "tensorflow"),
    ]
    with pytest.raises(ServingConfigError, match='line 1, column 1: .*no field named "improperly"'):
        parse_model_config((TESTDATA / "bad_model_config.txt").read_text())


def test_parse_model_config_reports_the_line_of_a_type_error():
    text = 'model_config_list {\n  config {\n    name: "m"\n    base_path: 42\n  }\n}\n'
    expected = "models.config: Error parsing text-format tensorflow.serving.ModelServerConfig: line 4, column 16: .*Expected string"
    with pytest.raises(ServingConfigError, match=expected):
        parse_model_config(text)


# -------------------------------------------------------------------------- batching.config, monitoring.config

def test_render_batching_config_defaults_are_the_cpu_starting_point():
    text = render_batching_config()
    assert text.startswith("# ")
    for knob in ("num_batch_threads", "max_batch_size", "batch_timeout_micros", "max_enqueued_batches"):
        assert re.search(rf"^# - {knob}: ", text, re.MULTILINE), knob
    assert "max_batch_size { value: 128 }" in text  # the wrapper form TF Serving's own fixture uses
    params = parse_batching_config(text)
    assert (params.max_batch_size.value, params.batch_timeout_micros.value, params.num_batch_threads.value) == (
        128, 0, os.cpu_count()
    )
    assert list(params.allowed_batch_sizes) == [] and not params.pad_variable_length_inputs


def test_render_batching_config_options():
    params = parse_batching_config(
        render_batching_config(
            max_batch_size=64, num_batch_threads=3, allowed_batch_sizes=[16, 32, 64], pad_variable_length_inputs=True
        )
    )
    assert (params.max_batch_size.value, params.num_batch_threads.value) == (64, 3)
    assert list(params.allowed_batch_sizes) == [16, 32, 64] and params.pad_variable_length_inputs


@pytest.mark.parametrize(
    "options, message",
    [
        ({"num_batch_threads": 0}, "num_batch_threads must be at least 1, got 0"),
        ({"batch_timeout_micros": -1}, "batch_timeout_micros must be at least 0"),
        ({"allowed_batch_sizes": [32, 64]}, r"last allowed_batch_sizes entry \(64\) must equal max_batch_size"),
        ({"max_batch_size": 64, "allowed_batch_sizes": [64, 32, 64]}, "must be positive and increasing"),
        ({"max_batch_size": 1.5}, "line .*Couldn't parse integer"),
    ],
)
def test_render_batching_config_refuses_what_tf_serving_would(options, message):
    with pytest.raises(ServingConfigError, match=message):
        render_batching_config(**options)


def test_tf_serving_batching_fixture_passes_the_checker():
    params = parse_batching_config((TESTDATA / "batching_config.txt").read_text())
    assert (
        params.max_batch_size.value,
        params.batch_timeout_micros.value,
        params.max_enqueued_batches.value,
        params.num_batch_threads.value,
    ) == (128, 0, 1000000, 8)


def test_batching_checker_accepts_every_text_format_spelling():
    params = parse_batching_config(
        "# comment\nmax_batch_size: { value: 8 },\nallowed_batch_sizes: [4, 8]\n"
        'thread_pool_name { value: "batch" }\nenable_large_batch_splitting { value: false }\n'
    )
    assert (params.max_batch_size.value, list(params.allowed_batch_sizes)) == (8, [4, 8])


@pytest.mark.parametrize(
    "text, message",
    [
        ("max_batch_sizes { value: 128 }", 'line 1, column 1: .*no field named "max_batch_sizes"'),
        ("max_batch_size: 128", 'line 1, column 17: .*Expected "{"'),  # a wrapper, not a plain number
        ('num_batch_threads { value: "8" }', "Couldn't parse integer"),
        ("max_batch_size { val: 8 }", 'no field named "val"'),
        ('pad_variable_length_inputs: "yes"', 'Expected "true" or "false"'),
        ("allowed_batch_sizes: 8.5", "Couldn't parse integer"),
        ("max_batch_size { value: 8 }\nmax_batch_size { value: 9 }", 'line 2.*not have multiple "max_batch_size"'),
    ],
)
def test_batching_checker_rejects_misspelled_fields_and_wrong_types(text, message):
    with pytest.raises(ServingConfigError, match=message):
        parse_batching_config(text)


def test_render_monitoring_config():
    text = render_monitoring_config()
    assert text.startswith("# ") and "prometheus_config {" in text
    config = parse_monitoring_config(text)
    assert (config.prometheus_config.enable, config.prometheus_config.path) == (True, DEFAULT_METRICS_PATH)
    assert parse_monitoring_config(render_monitoring_config("/metrics")).prometheus_config.path == "/metrics"
    for bad in ("metrics", '/a" } x {', "/with space"):
        with pytest.raises(ServingConfigError, match="must be a URL path starting with '/'"):
            render_monitoring_config(bad)


def test_tf_serving_monitoring_fixture_passes_the_checker():
    config = parse_monitoring_config((TESTDATA / "monitoring_config.txt").read_text())
    assert (config.prometheus_config.enable, config.prometheus_config.path) == (True, DEFAULT_METRICS_PATH)


@pytest.mark.parametrize(
    "text, message",
    [
        ("prometheus_config { enabled: true }", 'no field named "enabled"'),
        ("prometheus { enable: true }", 'no field named "prometheus"'),
        ("prometheus_config { enable: 2 }", 'Expected "true" or "false"'),
        ("prometheus_config { path: 3 }", "Expected string"),
        ('prometheus_config { enable: true path: "metrics" }', "must be a URL path"),
    ],
)
def test_monitoring_checker_rejects_misspelled_fields_and_wrong_types(text, message):
    with pytest.raises(ServingConfigError, match=message):
        parse_monitoring_config(text)


# ------------------------------------------------------------------------------------- write_serving_configs

def test_write_serving_configs_writes_the_three_files_whole(tmp_path):
    base = make_base(tmp_path / "base", {"m": [1, 2]})
    out = tmp_path / "out"
    written = write_serving_configs(
        base, out, version_policy="specific", versions=[1, 2], labels={"stable": 1},
        base_path_prefix="/models", num_batch_threads=2, metrics_path="/metrics",
    )
    assert written == {name: out / name for name in ("models.config", "batching.config", "monitoring.config")}
    assert sorted(p.name for p in out.iterdir()) == sorted(written)  # no temporary files left behind
    (model,) = parse_model_config(written["models.config"].read_text()).model_config_list.config
    assert (model.base_path, dict(model.version_labels)) == ("/models/m", {"stable": 1})
    assert parse_batching_config(written["batching.config"].read_text()).num_batch_threads.value == 2
    assert parse_monitoring_config(written["monitoring.config"].read_text()).prometheus_config.path == "/metrics"

    before = {p.name: p.read_text() for p in out.iterdir()}
    with pytest.raises(ServingConfigError, match="unknown version_policy"):
        write_serving_configs(base, out, version_policy="newest")
    assert {p.name: p.read_text() for p in out.iterdir()} == before  # a bad option changes nothing


# ------------------------------------------------------------------------------------- serving/ (checked in)

def test_example_configs_are_what_serving_config_writes(tmp_path):
    example = parse_model_config((SERVING / "models.config").read_text())
    base = make_base(tmp_path, {"mnist_cnn": EXAMPLE["versions"]})
    assert example == build_model_config(
        base, version_policy="specific", base_path_prefix="/models", **EXAMPLE
    )
    parse_batching_config((SERVING / "batching.config").read_text())
    parse_monitoring_config((SERVING / "monitoring.config").read_text())


def uncommented(path: Path) -> str:
    return "\n".join(re.sub(r"(^|\s)#.*", "", line) for line in path.read_text().splitlines())


@pytest.mark.parametrize("manifest", ["docker-compose.yml", "k8s/deployment.yaml"])
def test_server_manifests_use_tf_serving_flags_and_the_config_files(manifest):
    text = uncommented(SERVING / manifest)
    assert "image: tensorflow/serving:2.21.0" in text
    flags = dict(re.findall(r"^\s*- --([\w-]+)=(\S+)$", text, re.MULTILINE))
    stray = set(re.findall(r"(?<![\w-])--([\w-]+)", text)) - set(flags)
    assert not stray, f"flags not given as '- --name=value' list items: {stray}"
    assert set(flags) <= TF_SERVING_FLAGS, f"not flags of tensorflow_model_server: {set(flags) - TF_SERVING_FLAGS}"
    assert {
        "port": "8500",
        "rest_api_port": "8501",
        "model_config_file": "/config/models.config",
        "model_config_file_poll_wait_seconds": "60",
        "allow_version_labels_for_unavailable_models": "true",  # the example labels versions at startup
        "enable_batching": "true",
        "batching_parameters_file": "/config/batching.config",
        "monitoring_config_file": "/config/monitoring.config",
    }.items() <= flags.items()
    # The models in models.config live under /models, where the manifests mount the model base.
    assert re.search(r"(:/models:ro|mountPath: /models)$", text, re.MULTILINE)
    assert re.search(r"(:/config:ro|mountPath: /config)$", text, re.MULTILINE)


def test_health_checks_ask_for_a_model_the_example_serves():
    served = {c.name for c in parse_model_config((SERVING / "models.config").read_text()).model_config_list.config}
    compose = uncommented(SERVING / "docker-compose.yml")
    assert set(re.findall(r"GET /v1/models/\$\{TFZOO_HEALTH_MODEL:-(\w+)\} HTTP/1\.0", compose)) <= served
    assert '"AVAILABLE"' in compose
    deployment = uncommented(SERVING / "k8s" / "deployment.yaml")
    probed = re.findall(r"path: /v1/models/(\w+)$", deployment, re.MULTILINE)
    assert len(probed) == 2 and set(probed) <= served  # startup and readiness


def test_kserve_inference_service_uses_the_tensorflow_runtime():
    text = uncommented(SERVING / "k8s" / "kserve-inferenceservice.yaml")
    assert "kind: InferenceService" in text and "apiVersion: serving.kserve.io/v1beta1" in text
    assert re.search(r"modelFormat:\s+name: tensorflow", text)
    assert 'runtimeVersion: "2.21.0"' in text
    assert re.search(r"storageUri: \S+/mnist_cnn$", text, re.MULTILINE)


def test_manifests_parse_as_yaml():
    yaml = pytest.importorskip("yaml", reason="PyYAML is not installed; the regex checks above still run")
    compose = yaml.safe_load((SERVING / "docker-compose.yml").read_text())
    service = compose["services"]["tf-serving"]
    assert service["image"] == "tensorflow/serving:2.21.0" and service["ports"] == ["8500:8500", "8501:8501"]
    assert service["healthcheck"]["test"][:3] == ["CMD", "bash", "-c"]
    deployment = yaml.safe_load((SERVING / "k8s" / "deployment.yaml").read_text())
    (container,) = deployment["spec"]["template"]["spec"]["containers"]
    assert container["readinessProbe"]["httpGet"] == {"path": "/v1/models/mnist_cnn", "port": "http"}
    assert container["args"] == service["command"]
    assert yaml.safe_load((SERVING / "k8s" / "service.yaml").read_text())["kind"] == "Service"
    isvc = yaml.safe_load((SERVING / "k8s" / "kserve-inferenceservice.yaml").read_text())
    assert isvc["spec"]["predictor"]["model"]["runtimeVersion"] == "2.21.0"


def test_a_model_folder_whose_name_cannot_be_served_is_named(tmp_path):
    base = make_base(tmp_path, {"good": [1], "a b": [1]})
    with pytest.raises(ServingConfigError, match=r"model folder .*a b: 'a b' cannot name a served model: .* use "
                                                 r"letters, digits, '_', '-' and '.' \(not first\)"):
        discover_models(base)


def test_serving_config_versions_per_model_from_the_command_line(tmp_path, capsys):
    """`--version-policy specific --versions 1 2` applied to every model under the base: no per-model choice."""
    from tfzoo.cli import main

    base = make_base(tmp_path / "models", {"a": [1, 2, 3], "b": [5, 6], "c": [7, 8]})
    out = tmp_path / "out"
    assert main(["serving-config", str(base), "--out", str(out), "--versions", "a=1,2", "--versions", "b=6"]) == 0
    text = (out / "models.config").read_text()
    config = parse_model_config(text)
    policies = {model.name: model.model_version_policy for model in config.model_config_list.config}
    assert list(policies["a"].specific.versions) == [1, 2] and list(policies["b"].specific.versions) == [6]
    assert policies["c"].latest.num_versions == 1  # not named: --version-policy (latest)
    # TF Serving's own message definition reads it back the same (model_server_config_pb2, text format).
    from google.protobuf import text_format
    from tensorflow_serving.config import model_server_config_pb2
    assert text_format.Parse(text, model_server_config_pb2.ModelServerConfig()) == config

    assert main(["serving-config", str(base), "--out", str(out), "--version-policy", "all", "--versions", "b=5"]) == 0
    policies = {m.name: m.model_version_policy for m in parse_model_config((out / "models.config").read_text())
                .model_config_list.config}
    assert [policies[name].WhichOneof("policy_choice") for name in "abc"] == ["all", "specific", "all"]
    # The old form still serves those versions of every model (here one model).
    single = make_base(tmp_path / "single", {"m": [1, 2, 3]})
    assert main(["serving-config", str(single), "--out", str(out), "--version-policy", "specific",
                 "--versions", "1", "2"]) == 0
    (model,) = parse_model_config((out / "models.config").read_text()).model_config_list.config
    assert list(model.model_version_policy.specific.versions) == [1, 2]
    capsys.readouterr()


@pytest.mark.parametrize("versions, message", [
    (["a=1", "1"], r"for every model \(--versions 1 2\) or per model, each model once"),
    (["a=1", "--versions", "a=2"], "each model once"),
    (["z=1"], r"versions names unknown model\(s\) \['z'\]"),
])
def test_serving_config_per_model_versions_refusals_are_one_line(tmp_path, capsys, versions, message):
    from tfzoo.cli import main

    base = make_base(tmp_path / "models", {"a": [1, 2]})
    assert main(["serving-config", str(base), "--out", str(tmp_path / "out"), "--versions", *versions]) == 2
    error = capsys.readouterr().err
    assert re.search(message, error) and error.count("\n") == 1, error
    assert not (tmp_path / "out").exists()
