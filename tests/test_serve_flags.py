"""`tfzoo serve` takes tensorflow_model_server's command line (model_servers/main.cc): flags, defaults, checks."""
from __future__ import annotations

from pathlib import Path

import pytest

from tfzoo.cli import SERVER_FLAGS, build_parser, main
from tfzoo.serving.manager import ModelManager, model_config
from tfzoo.serving.server import ModelServer, ServerOptions


def serve_args(*flags: str) -> ServerOptions:
    args = build_parser().parse_args(["serve", *flags])
    return ServerOptions(**{name: getattr(args, name) for name in SERVER_FLAGS})


def test_the_tensorflow_serving_image_command_line_parses_with_its_defaults() -> None:
    # The tensorflow/serving image runs: --port=8500 --rest_api_port=8501 --model_name=... --model_base_path=...
    options = serve_args("--port=8500", "--rest_api_port=8501", "--model_name=mnist", "--model_base_path=/models/mnist")
    assert (options.port, options.rest_api_port, options.model_name, options.model_base_path) == (
        8500, 8501, "mnist", "/models/mnist")
    # main.cc's defaults for what the command line leaves out.
    defaults = serve_args("--model_base_path=/m")
    assert defaults.port == 8500 and defaults.rest_api_port == 0 and defaults.model_name == "default"
    assert defaults.file_system_poll_wait_seconds == 1 and defaults.model_config_file_poll_wait_seconds == 0
    assert defaults.rest_api_timeout_in_ms == 30000
    assert defaults.enable_model_warmup and not defaults.enable_batching
    assert not defaults.enable_serialization_as_tensor_content
    assert not defaults.xla_cpu_compilation_enabled  # main.cc: XLA compiles nothing unless asked


def test_boolean_flags_take_true_false_or_stand_alone() -> None:
    assert serve_args("--model_base_path=/m", "--enable_batching").enable_batching is True
    assert serve_args("--model_base_path=/m", "--enable_model_warmup=false").enable_model_warmup is False
    assert serve_args("--model_base_path=/m", "--enable_serialization_as_tensor_content=true"
                      ).enable_serialization_as_tensor_content is True
    assert serve_args("--model_base_path=/m", "--xla_cpu_compilation_enabled").xla_cpu_compilation_enabled is True
    with pytest.raises(SystemExit):
        serve_args("--model_base_path=/m", "--enable_batching=maybe")


def test_space_separated_values_and_earlier_tfzoo_spellings_work_too() -> None:
    options = serve_args("--model-config", "/c/models.config", "--grpc-port", "9000", "--rest-port", "9001")
    assert (options.model_config_file, options.port, options.rest_api_port) == ("/c/models.config", 9000, 9001)


@pytest.mark.parametrize("flags, message", [
    # server.cc BuildAndStart's own refusals, with its texts.
    ([], "Both server_options.model_base_path and server_options.model_config_file are empty!"),
    (["--model_base_path=/m", "--batching_parameters_file=/b"],
     "server_options.batching_parameters_file is set without setting server_options.enable_batching to true."),
    (["--model_base_path=/m", "--port=0"], "--port must be set"),
])
def test_options_tf_serving_refuses_end_in_one_clear_line(flags: list[str], message: str,
                                                          capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["serve", *flags]) == 2
    error = capsys.readouterr().err
    assert message in error and error.count("\n") == 1


def test_a_relative_base_path_in_a_config_file_is_refused_as_tf_serving_refuses_it(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = tmp_path / "models.config"
    config.write_text('model_config_list { config { name: "m" base_path: "models/m" model_platform: "tensorflow" } }')
    assert main(["serve", f"--model_config_file={config}", "--port=1"]) == 2
    assert "Expected model m to have an absolute path or URI; got base_path()=models/m" in capsys.readouterr().err


def test_a_bad_batching_file_is_named(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    batching = tmp_path / "batching.config"
    batching.write_text("max_batch_size { value: -x }")
    assert main(["serve", "--model_base_path=/m", "--enable_batching", f"--batching_parameters_file={batching}"]) == 2
    assert str(batching) in capsys.readouterr().err


@pytest.mark.parametrize("name", ["a b", "", "a/b", "m:predict", ".hidden", "caf\u00e9"])
def test_a_model_name_that_cannot_be_a_rest_path_segment_is_refused(name: str, tmp_path: Path) -> None:
    """`--model_name 'a b'` was accepted, then unreachable over REST (the CLI prints the error as its one line)."""
    with pytest.raises(ValueError) as error:
        ServerOptions(model_name=name, model_base_path=str(tmp_path)).model_configs()
    assert str(error.value).startswith(f"--model_name {name!r} cannot name a served model")
    assert "use letters, digits, '_', '-' and '.' (not first)" in str(error.value)


def test_a_base_path_that_is_a_file_is_refused_at_start_naming_it(tmp_path: Path) -> None:
    """It started silently, answering only "Could not find any versions"; now the CLI ends with exit status 2."""
    model = tmp_path / "saved_model.pb"
    model.write_bytes(b"")
    with pytest.raises(ValueError, match=f"the base path of model default, {model}, is a file, not a folder"):
        ModelServer(ServerOptions(model_base_path=str(model), port=0))


def test_a_missing_base_path_is_followed_as_tf_serving_does_and_named_once_at_start(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    missing = tmp_path / "not-yet"
    with caplog.at_level("WARNING", logger="tfzoo.serving.manager"):
        manager = ModelManager([model_config("m", missing)])
    assert [record.getMessage() for record in caplog.records] == [
        f"the base path of model m, {missing}, does not exist: nothing is served for it until a version folder "
        f"appears there ({missing}/1/saved_model.pb); fix the path if that is not what you meant"]
    manager.refresh()  # TF Serving keeps polling it: no error
    assert manager.model_names == ["m"]
