"""Every bad `tfzoo` input ends in one clear line: the flags walked from the real parser, and end-to-end cases.

Rule for parse-time errors: exit status 2 and exactly one stderr line `tfzoo CMD: error: argument FLAG: ...` naming
the flag, the bad value and the valid range. Rule for commands that fail later: exit status 2 and one
`tfzoo CMD: error: ...` line (the subprocesses' other stderr lines are TensorFlow's own start-up logging);
`tfzoo validate` reports a damaged file as a FAIL line naming it, exit status 1. Never a traceback.
"""
from __future__ import annotations

import argparse
import gc
import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import tfzoo
from tfzoo.cli import INT64_MAX, Bounded, build_parser, main
from tfzoo.export.warmup import REFERENCE_FILE
from tfzoo.run_dir import load_run
from tfzoo.serving.layout import ASSETS_EXTRA, WARMUP_FILE
from tfzoo.text.generation import call_generate_signature, generate
from tfzoo.text.loading import load_generate_function


def subcommands() -> dict[str, argparse.ArgumentParser]:
    (action,) = [a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction)]
    return dict(action.choices)


def minimal_argv(command: str, parser: argparse.ArgumentParser) -> list[str]:
    """The command with a placeholder for each required argument, so that only the flag under test can fail."""
    argv = [command]
    for action in parser._actions:
        if not action.option_strings and action.required:
            argv.append("x")
        elif action.option_strings and action.required:
            argv += [action.option_strings[0], "x"]
    return argv


NUMERIC_FLAGS = [(command, action) for command, parser in subcommands().items() for action in parser._actions
                 if isinstance(action.type, Bounded)]


def flag_id(case: tuple[str, argparse.Action]) -> str:
    return f"{case[0]} {case[1].option_strings[0]}"


def bad_values(bounded: Bounded) -> list[str]:
    """Out of range below and above, far beyond int32 and int64, and not numbers at all."""
    values = [bounded.low if bounded.low_open else bounded.low - 1, bounded.high + 1, 2**64, "abc", "", "nan", "inf",
              "-inf"]
    if bounded.high < 2**32:
        values.append(2**32)
    if bounded.kind is int:
        values.append("1.5")
    return [str(value) for value in values]


def test_every_numeric_flag_has_a_bounded_type() -> None:
    # A flag added later with a bare int or float type (no range) fails here.
    bare = [f"tfzoo {command} {action.option_strings or action.dest}" for command, parser in subcommands().items()
            for action in parser._actions if action.type in (int, float)]
    assert not bare, f"numeric flags without a range: {bare}"
    # The walk reaches every command with numeric flags (an empty walk would test nothing).
    assert {command for command, _ in NUMERIC_FLAGS} == {"train", "export", "serve", "predict", "serving-config",
                                                         "generate", "tfrecords"}
    for _, action in NUMERIC_FLAGS:
        assert -INT64_MAX <= action.type.low <= action.type.high <= INT64_MAX


@pytest.mark.parametrize("case", NUMERIC_FLAGS, ids=flag_id)
def test_out_of_range_values_end_in_one_line_naming_flag_value_and_range(case, capsys) -> None:
    command, action = case
    argv = minimal_argv(command, subcommands()[command])
    for value in bad_values(action.type):
        with pytest.raises(SystemExit) as exit_info:
            main([*argv, f"{action.option_strings[0]}={value}"])
        error = capsys.readouterr().err
        assert exit_info.value.code == 2, (value, error)
        assert error.count("\n") == 1 and error.endswith("\n"), error
        assert error.startswith(f"tfzoo {command}: error: argument "), error
        assert action.option_strings[0] in error and repr(value) in error, error
        assert f"{action.type.low} " in error and f"to {action.type.high}" in error, error


@pytest.mark.parametrize("case", NUMERIC_FLAGS, ids=flag_id)
def test_the_ends_of_each_range_are_accepted(case) -> None:
    command, action = case
    parser = build_parser()
    argv = minimal_argv(command, subcommands()[command])
    ends = [action.type.high] if action.type.low_open else [action.type.low, action.type.high]
    for value in ends:
        parsed = getattr(parser.parse_args([*argv, f"{action.option_strings[0]}={value}"]), action.dest)
        assert parsed == ([value] if action.nargs == "+" else value)


@pytest.mark.parametrize("argv, flag, value", [
    (["serving-config", "base", "--out", "out"], "--label", f"stable={INT64_MAX + 1}"),
    (["serving-config", "base", "--out", "out"], "--label", "stable=-1"),
    (["serving-config", "base", "--out", "out"], "--versions", "mnist=1,x"),
    (["serving-config", "base", "--out", "out"], "--versions", "=1"),
    (["serving-config", "base", "--out", "out"], "--versions", "-1"),
    (["serve"], "--enable_batching", "2"),
    (["train", "m"], "-p", "=3"),
])
def test_other_typed_flags_end_in_one_line_too(argv, flag, value, capsys) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main([*argv, flag, value])
    error = capsys.readouterr().err
    assert exit_info.value.code == 2 and error.count("\n") == 1 and flag in error and repr(value) in error, error


def test_a_missing_json_file_is_named(tmp_path, capsys) -> None:
    missing = tmp_path / "request.json"
    assert main(["predict", "--model", "m", "--json", f"@{missing}"]) == 2
    error = capsys.readouterr().err
    assert error.count("\n") == 1 and str(missing) in error and "no such file" in error


# End to end: real exports and runs, damaged on disk. The commands run in-process through main() (a traceback
# would fail the test; stderr must be exactly one line); one runs as a real subprocess, TensorFlow's start-up
# logging around it, to check the real command line ends the same way.

def copy_version(version_dir: Path, folder: Path) -> Path:
    copy = folder / version_dir.name
    shutil.copytree(version_dir, copy)
    return copy


def truncate(path: Path) -> None:
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 3])


@pytest.fixture(scope="module")
def paths(trained_run, tmp_path_factory) -> dict[str, Path]:
    """A regression run and its export, damaged copies of the export, and a tiny text generator run."""
    tmp = tmp_path_factory.mktemp("cli_flags")
    regression = trained_run("logistic_regression")
    version = Path(tfzoo.export(regression.run_dir, tmp / "models"))
    generator = tfzoo.train("text_generator", epochs=1, run_dir=tmp / "generator", verbose=0, num_layers=1,
                            d_model=16, num_heads=1, ff_dim=16)
    graph = copy_version(version, tmp / "truncated_graph") / "saved_model.pb"
    truncate(graph)
    warmup = copy_version(version, tmp / "truncated_warmup") / ASSETS_EXTRA / WARMUP_FILE
    truncate(warmup)
    metadata = copy_version(version, tmp / "bad_metadata") / ASSETS_EXTRA / "tfzoo.json"
    metadata.write_text('{"model": "logistic_regression", ')
    reference = copy_version(version, tmp / "truncated_reference") / ASSETS_EXTRA / REFERENCE_FILE
    truncate(reference)
    return {"graph": graph, "warmup": warmup, "metadata": metadata, "reference": reference, "version": version,
            "run": regression.run_dir, "generator": generator.run_dir}


@pytest.mark.parametrize("damaged, problem", [
    ("graph", "is truncated or corrupt"),
    ("warmup", "is truncated or corrupt"),
    ("metadata", "is not the JSON object tfzoo export writes"),
    ("reference", "is truncated or corrupt"),
])
def test_validate_names_a_damaged_file_and_fails_with_status_1(paths, capsys, damaged, problem) -> None:
    version_dir = paths[damaged].parent.parent if damaged != "graph" else paths[damaged].parent
    assert main(["validate", str(version_dir)]) == 1
    out = capsys.readouterr().out
    (fail,) = [line for line in out.splitlines() if line.strip().startswith("FAIL")]
    assert f"{paths[damaged]} {problem}" in fail and "export again" in fail
    assert out.rstrip().endswith("=> NOT valid: fix the FAIL lines above")


@pytest.mark.parametrize("folder, message", [
    ("version", "has no 'generate' signature (it has serving_default)"),
    ("run", "is a run of logistic_regression, not a text generator"),
])
def test_generate_on_a_model_that_does_not_generate_is_one_line(paths, capsys, folder, message) -> None:
    assert main(["generate", str(paths[folder]), "--prompt", "x"]) == 2
    captured = capsys.readouterr()
    assert captured.out == "" and captured.err == (
        f"tfzoo generate: error: {paths[folder]} {message}; tfzoo generate needs a text_generator export or run dir\n")


def test_the_real_command_line_ends_in_the_same_line(paths, capsys) -> None:
    assert main(["generate", str(paths["run"]), "--prompt", "x"]) == 2
    expected = capsys.readouterr().err.rstrip("\n")
    result = subprocess.run([sys.executable, "-m", "tfzoo", "generate", str(paths["run"]), "--prompt", "x"],
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 2 and "Traceback" not in result.stderr, result.stderr
    assert result.stderr.splitlines()[-1] == expected
    assert [line for line in result.stderr.splitlines() if line.startswith("tfzoo")] == [expected]


def test_more_prompts_than_one_call_takes_all_get_an_answer(paths, capsys) -> None:
    prompts = [f"def f{i % 7}(" for i in range(300)]  # more than one call's 256, with repeats across the calls
    assert main(["generate", str(paths["generator"]), "--max-new-tokens", "3",
                 *[part for prompt in prompts for part in ("--prompt", prompt)]]) == 0
    answers = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [answer["prompt"] for answer in answers] == prompts
    # Greedy: a prompt's text is the same in the first call and in the second one.
    text = {}
    for answer in answers:
        assert text.setdefault(answer["prompt"], answer["text"]) == answer["text"]


def test_a_control_beyond_its_dtype_is_refused_not_wrapped(paths) -> None:
    # tf.constant(2**32, tf.int32) is 0: without the check, 2**32 new tokens would silently mean none.
    _, model = load_run(paths["generator"])
    with pytest.raises(ValueError, match=r"max_new_tokens=4294967296 is outside int32's range"):
        generate(model, "x", max_new_tokens=2**32)
    with pytest.raises(ValueError, match=r"seed=9223372036854775808 is outside int64's range"):
        generate(model, "x", seed=2**63)


@pytest.mark.parametrize("flags", [["--model_config_file=/nowhere/models.config"],
                                   ["--model_base_path=/m", "--monitoring_config_file=/nowhere/monitoring.config"],
                                   ["--model_base_path=/m", "--enable_batching",
                                    "--batching_parameters_file=/nowhere/batching.config"]])
def test_a_missing_server_file_is_named_with_its_flag(flags, capsys) -> None:
    # --port=0 would be refused next: the file must be refused first, before anything is served.
    assert main(["serve", *flags, "--port=0"]) == 2
    error = capsys.readouterr().err
    flag, path = flags[-1].split("=")
    assert error == f"tfzoo serve: error: {flag}={path}: no such file; pass the path of an existing file\n"


def test_validate_on_a_missing_folder_fails_naming_it(tmp_path, capsys) -> None:
    missing = tmp_path / "models" / "m" / "1"
    assert main(["validate", str(missing)]) == 1
    assert f"FAIL layout: {missing} is not a folder; pass a version folder" in capsys.readouterr().out


def test_a_run_dirs_generate_function_keeps_its_model_alive(paths) -> None:
    # The compiled functions hold the model weakly; once loaded, nothing else held it, so a collection between
    # loading and the first call left `tfzoo generate RUN_DIR` tracing with no model (AttributeError on None).
    function = load_generate_function(paths["generator"])
    gc.collect()
    (text,) = call_generate_signature(function, ["def f("], max_new_tokens=3)
    assert isinstance(text, str) and len(text.encode()) <= 3 * 3  # at most 3 tokens, each a byte or U+FFFD


def test_generate_on_a_run_dir_gives_the_same_text_with_xla_and_with_no_xla(paths, capsys) -> None:
    outputs = []
    for flags in ([], ["--no-xla"]):  # the token loop compiled with XLA (the default), then the XLA-free graph
        assert main(["generate", str(paths["generator"]), "--prompt", "def f(", "--prompt", "The",
                     "--max-new-tokens", "12", *flags]) == 0
        outputs.append(capsys.readouterr().out)
    assert outputs[0] == outputs[1] and [json.loads(line)["prompt"] for line in outputs[0].splitlines()] == [
        "def f(", "The"]
