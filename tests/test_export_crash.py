"""Exports that survive a kill: real `tfzoo export` processes SIGKILLed while they stage, while they validate and
after they publish; then a retry that leaves no staging folder and publishes the run exactly once."""
from __future__ import annotations

import contextlib
import ctypes
import hashlib
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

import tfzoo
from tfzoo.cli import main
from tfzoo.export.saved_model import STAGING_LOCK, remove_stale_staging

Start = Callable[..., subprocess.Popen]


@pytest.fixture(scope="module")
def run(trained_run) -> tfzoo.TrainResult:
    """One tiny trained run for the whole module (shared with the other export tests when they run too)."""
    return trained_run("logistic_regression")


@pytest.fixture
def start() -> Iterator[Start]:
    """start(args, **popen): a process in a group of its own (so a kill takes its children too), its stdout
    dropped, its stderr in the test's report; whatever is still running when the test ends is killed."""
    started: list[subprocess.Popen] = []

    def start(args: list[str], **popen) -> subprocess.Popen:
        popen = {"stdout": subprocess.DEVNULL, **popen}
        process = subprocess.Popen(args, start_new_session=True, **popen)
        started.append(process)
        return process

    yield start
    for process in started:
        if process.poll() is None:
            kill(process)


def kill(process: subprocess.Popen) -> None:
    """SIGKILL the process and its children (an export's validating child among them), as a crash would."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)
    process.wait()


def go(process: subprocess.Popen) -> None:
    """Let a process started to wait for a line on stdin go on."""
    process.stdin.write(b"go\n")
    process.stdin.flush()


def wait_for(found: Callable[[], object], process: subprocess.Popen, point: str):
    """Poll until found() is truthy and return it; fail if the process ends first (the point was never hit)."""
    while not (value := found()):
        assert process.poll() is None, f"the export ended (exit {process.returncode}) before {point}"
        time.sleep(0.01)
    return value


def child_commands(pid: int) -> dict[int, list[str]]:
    """The command lines of the running children of `pid`, by process id."""
    commands = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        with contextlib.suppress(OSError, ValueError, IndexError):  # a process that ended while being read
            if int(stat.read_text().rpartition(")")[2].split()[1]) == pid:
                commands[int(stat.parent.name)] = (stat.parent / "cmdline").read_bytes().decode().split("\0")
    return commands


def validating_children(pid: int) -> list[int]:
    """The process ids of the validating processes `pid` runs."""
    return [child for child, command in child_commands(pid).items()
            if any("tfzoo.export.validate" in part for part in command)]


def running(pid: int) -> bool:
    """Whether process `pid` exists and has not ended (a zombie has ended)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[0] != "Z"
    except OSError:
        return False


def staging(model_dir: Path) -> set[Path]:
    return set(model_dir.glob(".staging-*"))


def versions(model_dir: Path) -> list[str]:
    return sorted(path.name for path in model_dir.iterdir() if path.name.isdigit())


def test_exports_killed_at_each_point_leave_nothing_and_a_retry_publishes_once(run, tmp_path, start, capsys):
    base, model_dir = tmp_path / "models", tmp_path / "models" / "logistic_regression"
    export_cli = [sys.executable, "-m", "tfzoo", "export", str(run.run_dir), "--model-base", str(base)]
    # The exports of steps 2 and 3 start now and wait for a line on stdin before they export: each new process
    # spends seconds importing TensorFlow, and that can overlap with the steps before theirs.
    validator = start([sys.executable, "-c", "import sys; from tfzoo.cli import main; sys.stdin.readline(); "
                                             "sys.exit(main(sys.argv[1:]))", *export_cli[3:]], stdin=subprocess.PIPE)
    code = (f"import sys, tfzoo; sys.stdin.readline(); tfzoo.export({str(run.run_dir)!r}, {str(base)!r}); "
            "sys.stdin.read()")
    publisher = start([sys.executable, "-c", code], stdin=subprocess.PIPE)

    # 1. Stopped while it writes the SavedModel: alive, so its staging folder must survive other exports.
    writer = start(export_cli)
    first = wait_for(lambda: [p.parent for p in model_dir.glob(".staging-*/1")], writer, "writing its SavedModel")[0]
    os.killpg(writer.pid, signal.SIGSTOP)
    assert not (first / "1" / "assets.extra" / "tfzoo.json").exists()  # hit: staging half written

    # 2. Another export (`tfzoo export`'s main, in a process of its own) runs meanwhile and is killed while its fresh
    # process validates the staged export.
    go(validator)
    wait_for(lambda: validating_children(validator.pid), validator, "validating")
    kill(validator)
    (second,) = staging(model_dir) - {first}
    assert (second / "1" / "assets.extra" / "tfzoo.json").exists() and versions(model_dir) == []  # hit: validating
    assert (first / "1").is_dir()  # the live (stopped) export's folder was left alone
    kill(writer)  # now the first export dies where it stood, half written

    # 3. Killed after the rename: the version is published, the process still dies with -9.
    go(publisher)
    wait_for(lambda: (model_dir / "1").exists(), publisher, "publishing version 1")
    kill(publisher)
    assert publisher.returncode == -signal.SIGKILL and versions(model_dir) == ["1"]  # hit: after the rename
    assert not staging(model_dir) & {first, second}  # the dead exports' folders went with the next export

    # 4. The retry finds the published version instead of publishing version 2, and cleans up after the kills.
    assert main(export_cli[3:]) == 0
    out = capsys.readouterr().out
    assert out.splitlines()[-1] == str(model_dir / "1") and "already holds this export" in out
    assert versions(model_dir) == ["1"] and not staging(model_dir)
    content = json.loads((model_dir / "1" / "assets.extra" / "tfzoo.json").read_text())["content"]
    assert content["model_sha256"] == hashlib.sha256((run.run_dir / "model.keras").read_bytes()).hexdigest()
    assert content["config_sha256"] == hashlib.sha256((run.run_dir / "config.json").read_bytes()).hexdigest()
    assert main(["validate", str(model_dir / "1")]) == 0
    assert "valid for TF Serving" in capsys.readouterr().out


@pytest.mark.slow
def test_exports_of_two_runs_at_the_same_moment_take_the_next_versions(run, trained_run, tmp_path, start, capsys):
    base, model_dir = tmp_path / "models", tmp_path / "models" / "m"
    # The first export chose version 1 and is held while its fresh process validates ...
    first = start([sys.executable, "-m", "tfzoo", "export", str(run.run_dir), "--model-base", str(base), "--name", "m"],
                  stdout=subprocess.PIPE, text=True)
    wait_for(lambda: validating_children(first.pid), first, "validating")
    os.killpg(first.pid, signal.SIGSTOP)
    # ... while an export of another run publishes version 1.
    assert tfzoo.export(trained_run("linear_regression"), base, name="m") == model_dir / "1"
    os.killpg(first.pid, signal.SIGCONT)
    out, _ = first.communicate(timeout=300)
    assert first.returncode == 0 and out.splitlines()[-1] == str(model_dir / "2"), out
    assert versions(model_dir) == ["1", "2"] and not staging(model_dir)
    metadata = json.loads((model_dir / "2" / "assets.extra" / "tfzoo.json").read_text())
    assert metadata["version"] == 2 and metadata["run_dir"] == str(run.run_dir.resolve())
    assert main(["validate", str(model_dir / "2")]) == 0
    assert "valid for TF Serving" in capsys.readouterr().out


def signal_a_worker_thread(pid: int, stop: signal.Signals) -> None:
    """Send `stop` to one of the process's threads other than its main one, as the kernel may deliver a signal
    sent to the process (glibc's tgkill): Python still runs its handler on the main thread."""
    thread = max(int(task) for task in os.listdir(f"/proc/{pid}/task") if int(task) != pid)
    if ctypes.CDLL(None, use_errno=True).tgkill(pid, thread, stop) != 0:
        raise OSError(ctypes.get_errno(), f"tgkill({pid}, {thread}, {stop.name}) failed")


@pytest.mark.slow
@pytest.mark.parametrize("stop, on_worker_thread",
                         [(signal.SIGTERM, False), (signal.SIGINT, False), (signal.SIGINT, True),
                          (signal.SIGKILL, False)],
                         ids=["SIGTERM", "SIGINT", "SIGINT-on-a-worker-thread", "SIGKILL"])
def test_a_killed_export_takes_its_validating_child_with_it(run, tmp_path, start, stop, on_worker_thread):
    export = start([sys.executable, "-m", "tfzoo", "export", str(run.run_dir), "--model-base", str(tmp_path)],
                   stderr=subprocess.DEVNULL)
    (child,) = wait_for(lambda: validating_children(export.pid), export, "validating")
    # Once it loads TensorFlow, the child has set itself up to die with its parent (its first lines do); stopped
    # then, it cannot end by itself (finishing its validation, or failing to write to its dead parent): only the
    # export's end can end it.
    wait_for(lambda: "tensorflow" in Path(f"/proc/{child}/maps").read_text(), export, "loading TensorFlow")
    os.kill(child, signal.SIGSTOP)
    try:
        if on_worker_thread:
            signal_a_worker_thread(export.pid, stop)
        else:
            os.kill(export.pid, stop)  # the export alone, not its process group
        assert export.wait(timeout=60) != 0
        deadline = time.monotonic() + 60  # a bound for a broken test, not a speed
        while running(child) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not running(child), f"the validating child {child} outlived the export killed by {stop.name}"
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.kill(child, signal.SIGKILL)


HOLD_LOCK = ("import fcntl, os, sys; lock = os.open(sys.argv[1], os.O_RDWR | os.O_CREAT); "
             "fcntl.flock(lock, fcntl.LOCK_EX); print('locked', flush=True); sys.stdin.read()")


def test_only_staging_folders_of_exports_that_no_longer_run_are_removed(tmp_path, start):
    folders = {name: tmp_path / name for name in (".staging-live", ".staging-killed", ".staging-no-lock", ".other")}
    for folder in folders.values():
        (folder / "1").mkdir(parents=True)
        (folder / "1" / "saved_model.pb").write_bytes(b"staged")
    holders = {}
    for name in (".staging-live", ".staging-killed"):  # each lock held by a process of its own, like an export
        holders[name] = start([sys.executable, "-c", HOLD_LOCK, str(folders[name] / STAGING_LOCK)],
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE)
        assert holders[name].stdout.readline() == b"locked\n"
    kill(holders[".staging-killed"])  # the kernel drops a killed process's flock

    assert sorted(remove_stale_staging(tmp_path)) == [folders[".staging-killed"], folders[".staging-no-lock"]]
    assert sorted(p.name for p in tmp_path.iterdir()) == [".other", ".staging-live"]
    assert (folders[".staging-live"] / "1" / "saved_model.pb").read_bytes() == b"staged"
    assert remove_stale_staging(tmp_path) == []  # still running: kept however often others look

    kill(holders[".staging-live"])
    assert remove_stale_staging(tmp_path) == [folders[".staging-live"]]
    assert [p.name for p in tmp_path.iterdir()] == [".other"]  # not a staging folder: never touched
