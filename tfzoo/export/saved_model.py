"""`export` and `export_model`: a trained run, or any Keras model, -> MODEL_BASE/NAME/VERSION/, TF Serving's layout,
whole or not at all."""
from __future__ import annotations

import contextlib
import datetime as dt
import fcntl
import functools
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import uuid
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

import keras
import numpy as np
import tensorflow as tf
from tensorflow.core.protobuf import meta_graph_pb2, saved_model_pb2

from tfzoo.export.signatures import KerasSignatures
from tfzoo.export.warmup import REFERENCE_FILE, write_reference, write_warmup
from tfzoo.run_dir import (
    CONFIG_FILE,
    METRICS_FILE,
    MODEL_FILE,
    load_run,
    package_versions,
    run_data,
    run_task,
    weights_digest,
)
from tfzoo.serving.layout import ASSETS_EXTRA, WARMUP_FILE, scan_versions
from tfzoo.tables import table_schema
from tfzoo.tables.serving import SIGNATURE_METHODS
from tfzoo.tasks import Request, Task, get_task
from tfzoo.tasks.base import WARMUP_BATCH_SIZES

METADATA_FILE = "tfzoo.json"
STAGING_PREFIX = ".staging-"  # hidden: TF Serving skips it
STAGING_LOCK = "lock"  # in each staging folder, flock-ed by its export for as long as it runs
# TF Serving puts model names in REST paths (/v1/models/NAME) and folder names.
MODEL_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*")


class ExportError(RuntimeError):
    """The export could not be written or did not validate; nothing was put in place."""


def export(
    run_dir_or_model: str | Path | Any,
    model_base: str | Path,
    *,
    name: str | None = None,
    version: int | None = None,
    max_tokens_per_request: int | None = None,
    xla: bool = False,
) -> Path:
    """Export a trained run (a run dir or the TrainResult of `tfzoo.train`) as MODEL_BASE/NAME/VERSION/ and
    return that folder. NAME defaults to the registry name; the signatures, warm-up requests (from the run's
    held-out examples) and reference outputs are its task's. See `publish` for how the folder is written.

    `max_tokens_per_request` (a language model's only; default DEFAULT_MAX_TOKENS_PER_REQUEST of
    tfzoo.text.generation) is the token budget built into its generation signatures: a request asking more
    (prompts x new tokens) is refused, by the stock TF Serving too. `xla` (a language model's only): its
    signatures run the token loop compiled with XLA, faster, for a server started with
    --xla_cpu_compilation_enabled (without it, the stock TF Serving and `tfzoo serve` fail the version);
    recorded in tfzoo.json's serving options, which `validate` checks. The default export needs no XLA.

    `tfzoo.json` records what the export is made of (`content`: the run's model.keras and config.json by
    SHA-256, the name, the tfzoo version, the task's serving options), so a retry after a crash returns the
    version already holding it.
    """
    run_dir = Path(getattr(run_dir_or_model, "run_dir", run_dir_or_model))
    config, model = load_run(run_dir)
    task = run_task(config)
    options = serving_options(task, max_tokens_per_request=max_tokens_per_request, xla=xla or None)
    functions = task.serving_functions(model, **options)  # an option out of range fails here, before any writing
    name = name or config["model"]
    content = {"model_sha256": file_sha256(run_dir / MODEL_FILE), "config_sha256": file_sha256(run_dir / CONFIG_FILE),
               "name": name, "tfzoo": tfzoo_version(), **recorded_options(options)}

    def requests() -> list[Request]:  # only once the export is known to be new: it reloads the run's data
        held_out = run_data(run_dir, config).first_features("test", max(WARMUP_BATCH_SIZES))
        return task.warmup_requests(model, held_out)

    metadata = {"model": config["model"], "task": task.name, "run_dir": str(run_dir.resolve()),
                "hparams": config["hparams"], "dataset": config["dataset"],
                "dataset_fingerprint": config["dataset_fingerprint"],
                "metrics": json.loads((run_dir / METRICS_FILE).read_text(encoding="utf-8")),
                **recorded_options(options), **recorded_table(model)}
    return publish(model, functions, requests, functools.partial(task.reference_outputs, model),
                   model_base, name=name, version=version, content=content, metadata=metadata)


def serving_options(task: Task | None, **given: Any) -> dict[str, Any]:
    """The task's serving options (Task.serving_options): its defaults, with those given (not None) in their place.
    ValueError, one line, for an option the task does not take (or given without a task)."""
    options = dict(task.serving_options) if task else {}
    for option, value in given.items():
        if value is None:
            continue
        if option not in options:
            what = f"a {task.name} export" if task else "an export without a task"
            raise ValueError(f"{option} is an option of a language model's export (its generation graph); "
                             f"{what} has none: leave it out")
        options[option] = value
    return options


def recorded_options(options: dict[str, Any]) -> dict[str, Any]:
    """How tfzoo.json (its content and metadata) records a task's serving options: not at all when it has none."""
    return {"serving_options": options} if options else {}


def recorded_table(model: keras.Model) -> dict[str, Any]:
    """How tfzoo.json records a table model's schema (columns, kinds, vocabularies, label values): under "table"."""
    schema = table_schema(model)
    return {"table": schema.to_json()} if schema is not None else {}


def export_model(
    model: keras.Model,
    model_base: str | Path,
    *,
    name: str,
    examples: np.ndarray | Mapping[str, np.ndarray],
    task: str | Task | None = None,
    version: int | None = None,
    max_tokens_per_request: int | None = None,
    xla: bool = False,
) -> Path:
    """Export any Keras model (functional, sequential or subclassed, trained however the user likes) as
    MODEL_BASE/NAME/VERSION/ through the same staged, validated, warmed-up path as `export`; return that folder.

    `examples` are real inputs, {input name: array [N, ...]} (an array alone for a one-input model): the warm-up
    requests are their first 1, 2, 4, ... (up to 32), and the model's own predictions on them are recorded beside
    the export, so the fresh-process validation checks that the served answers equal them (within 1e-5).
    Without `task`, `serving_default` keeps the model's input and output names (see tfzoo.export.signatures).
    With `task` (a name of `tfzoo.tasks.list_tasks()`), the task's signatures and output names are served instead,
    as for a model trained by tfzoo (a one-input model; `examples` are its held-out inputs).
    `max_tokens_per_request` and `xla`: as for `export`, with task="language_model" only.
    """
    if not isinstance(model, keras.Model):
        raise TypeError(f"export_model takes a keras.Model, got {type(model).__name__}")
    task = None if task is None else get_task(task)
    options = serving_options(task, max_tokens_per_request=max_tokens_per_request, xla=xla or None)
    if task is not None:
        held_out = (dict(examples) if table_schema(model) is not None
                    else np.asarray(next(iter(examples.values())) if isinstance(examples, Mapping) else examples))
        functions, requests, reference = (task.serving_functions(model, **options),
                                          task.warmup_requests(model, held_out),
                                          functools.partial(task.reference_outputs, model))
    else:
        if not isinstance(examples, Mapping):
            if not getattr(model, "inputs", None) or len(model.inputs) != 1:
                raise ValueError("examples must be {input name: array} for a model without exactly one named input")
            examples = {model.inputs[0].name: examples}
        signatures = KerasSignatures(model, examples)
        functions, requests, reference = (signatures.serving_functions(), signatures.warmup_requests(),
                                          signatures.reference_outputs)
    examples_digest = hashlib.sha256()
    for signature, inputs in requests:
        examples_digest.update(signature.encode())
        for input_name in sorted(inputs):
            # As a TensorProto: the bytes of the values, strings included (an object array's buffer holds pointers).
            examples_digest.update(input_name.encode() + tf.make_tensor_proto(inputs[input_name]).SerializeToString())
    content = {"weights_sha256": weights_digest(model), "requests_sha256": examples_digest.hexdigest(),
               "task": task.name if task else None, "name": name, "tfzoo": tfzoo_version(), **recorded_options(options)}
    metadata = {"model": model.name, "task": task.name if task else None, "class": type(model).__qualname__,
                **recorded_options(options), **recorded_table(model)}
    return publish(model, functions, lambda: requests, reference, model_base, name=name, version=version,
                   content=content, metadata=metadata)


def publish(
    model: keras.Model,
    functions: dict[str, Callable[..., dict[str, tf.Tensor]]],
    requests: Callable[[], list[Request]],
    reference: Callable[[Request], dict[str, np.ndarray]],
    model_base: str | Path,
    *,
    name: str,
    version: int | None,
    content: dict[str, Any],
    metadata: dict[str, Any],
) -> Path:
    """Write MODEL_BASE/NAME/VERSION/ whole or not at all, and return it.

    The SavedModel (tag `serve`, the `functions` as signatures), its warm-up requests, the reference outputs
    (what `reference` says the model answers to each request) and `tfzoo.json` (`metadata`, `content`, the
    signatures and package versions) are written to a hidden staging folder beside the version, validated in a
    fresh process, then renamed into place: TF Serving never sees half an export. `version` defaults to the next
    free integer, taken again when the export is put in place if a concurrent export published that number
    meanwhile; an existing version is never overwritten.

    Exporting is safe to retry after a crash. Staging folders that killed exports left behind are removed by the
    next export into the same model folder, never one whose export still runs (see `staging_folder`). When a
    version already holds the same `content`, that version is returned (and a line says so) instead of publishing
    a duplicate: the newest such version when `version` is left out, or `version` itself when it is given. A given
    `version` that holds other content is an error.
    """
    if not MODEL_NAME.fullmatch(name):
        raise ValueError(f"model name {name!r} must be letters, digits, '_', '.' or '-' (it becomes a URL path)")
    if version is not None and (isinstance(version, bool) or not isinstance(version, int) or version < 1):
        raise ValueError(f"version must be a positive integer (TF Serving's version folders), got {version!r}")
    model_dir = Path(model_base) / name
    for stale in remove_stale_staging(model_dir):
        print(f"removed {stale}: the staging folder of an export that no longer runs")
    published = published_version(model_dir, content, version)
    if published is not None:
        return already_published(published)
    asked = version
    version = next_version(model_dir) if version is None else version
    final = model_dir / str(version)
    if final.exists():
        raise FileExistsError(f"{final} already exists with another export; versions are never overwritten: "
                              f"pass another --version or leave it out to take the next free one "
                              f"({next_version(model_dir)})")

    recorded = requests()
    with removed_if_left_empty(model_dir), staging_folder(model_dir) as staging:
        staged = staging / str(version)
        write_saved_model(model, functions, staged)
        extra = staged / ASSETS_EXTRA
        extra.mkdir()
        write_warmup(extra / WARMUP_FILE, name, recorded)
        write_reference(extra / REFERENCE_FILE, name, recorded, [reference(request) for request in recorded])
        metadata = {**metadata, "name": name, "version": version, "signatures": signature_summary(staged),
                    "versions": package_versions(), "content": content,
                    "exported": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")}
        write_metadata(extra, metadata)
        validate_in_fresh_process(staged)
        while True:
            try:
                staged.rename(final)  # atomic on one filesystem; fails rather than replace a version that appeared
                return final
            except OSError as error:
                published = published_version(model_dir, content, asked)
                if published is not None:  # a concurrent export of the same model got there first
                    return already_published(published)
                if not final.exists():
                    raise
                if asked is not None:
                    raise FileExistsError(f"{final} appeared while exporting; versions are never overwritten: pass "
                                          f"another --version or leave it out to take the next free one") from error
            # A concurrent export of another model took this number while this one was written and validated: take
            # the next free one. Only tfzoo.json names the number; the folder is still staged, out of sight.
            version = max(next_version(model_dir), version + 1)
            final = model_dir / str(version)
            metadata["version"] = version
            write_metadata(extra, metadata)


def write_metadata(extra: Path, metadata: dict[str, Any]) -> None:
    """tfzoo.json in a staged version's assets.extra/."""
    (extra / METADATA_FILE).write_text(json.dumps(metadata, indent=2) + "\n", encoding="utf-8")


@contextlib.contextmanager
def removed_if_left_empty(model_dir: Path) -> Iterator[None]:
    """Remove `model_dir` when an export that made it fails and leaves it empty (a concurrent export's folders,
    or versions, keep it)."""
    created = not model_dir.exists()
    try:
        yield
    except BaseException:
        if created:
            with contextlib.suppress(OSError):
                model_dir.rmdir()
        raise


def tfzoo_version() -> str:
    """This tfzoo's version (imported late: the package imports this module)."""
    from tfzoo import __version__

    return __version__


def file_sha256(path: Path) -> str:
    """SHA-256 of a file's bytes, read a block at a time."""
    digest = hashlib.sha256()
    with path.open("rb") as file:
        for block in iter(lambda: file.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def already_published(version_dir: Path) -> Path:
    """Say that `version_dir` already holds the export asked for, and return it."""
    print(f"{version_dir} already holds this export (the same model, name and exporter); "
          "returning it rather than publishing a duplicate")
    return version_dir


def published_version(model_dir: Path, content: dict[str, str], version: int | None) -> Path | None:
    """The version folder that already holds `content`: `version` itself if given, else the newest one; or None.
    A version whose tfzoo.json is missing or unreadable holds something else."""
    versions = scan_versions(model_dir)
    for number in [version] if version is not None else sorted(versions, reverse=True):
        try:
            metadata = json.loads((versions[number] / ASSETS_EXTRA / METADATA_FILE).read_text(encoding="utf-8"))
        except (KeyError, OSError, ValueError):
            continue
        if isinstance(metadata, dict) and metadata.get("content") == content:
            return versions[number]
    return None


# Which staging folders are stale. Each export holds an exclusive flock on STAGING_LOCK in its staging folder for as
# long as it runs, and the kernel releases it when the process ends, however it ends (SIGKILL included). A folder
# whose lock can be taken is therefore stale; one whose lock is held belongs to a running export and is left alone.
# flock, not fcntl/lockf: closing any descriptor of a file drops a process's fcntl locks on it, and fcntl locks never
# conflict within one process. Creation races with removal: an export makes its folder, then opens and locks the
# file; a cleaner in between may find no lock file (or an unlocked one). The cleaner opens with O_CREAT and removes
# the folder only while holding the lock, and the export keeps a folder only when, once locked, the lock file on
# disk is still the one it holds; otherwise it takes a fresh name. No clock or process id is trusted.
def staging_folder_lock(folder: Path) -> int | None:
    """An exclusive flock on `folder`'s lock file (its descriptor), or None while another process holds it."""
    descriptor = os.open(folder / STAGING_LOCK, os.O_RDWR | os.O_CREAT, 0o644)  # RDWR: NFS emulates flock by fcntl
    try:
        fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(descriptor)
        return None
    except BaseException:
        os.close(descriptor)
        raise
    return descriptor


@contextlib.contextmanager
def staging_folder(model_dir: Path) -> Iterator[Path]:
    """A new hidden staging folder in `model_dir`, locked while the export runs and removed after it.

    The lock is a flock: on a local filesystem it is exact. On NFS (v4, or v3 with lockd) Linux emulates flock with
    byte-range locks that every client sees, so a running export on another host is respected too; a crashed host's
    lock lasts until its lease expires. Where locks are local to one host (NFS mounted with `nolock` or
    `local_lock`, FUSE mounts of buckets) an export running on another host can look stale: export each model from
    one host at a time there.
    """
    model_dir.mkdir(parents=True, exist_ok=True)
    while True:
        folder = model_dir / f"{STAGING_PREFIX}{uuid.uuid4().hex}"
        folder.mkdir()
        try:
            lock = staging_folder_lock(folder)
        except OSError:  # this filesystem has no locks: say so rather than leave a folder behind
            shutil.rmtree(folder, ignore_errors=True)
            raise
        if lock is not None:
            with contextlib.suppress(FileNotFoundError):
                if os.path.samestat(os.fstat(lock), os.stat(folder / STAGING_LOCK)):
                    break
            os.close(lock)
        # A concurrent export took the new folder for stale and is removing it: leave it that one.
    try:
        yield folder
    finally:
        shutil.rmtree(folder, ignore_errors=True)
        os.close(lock)  # after the removal, so no other export sees the folder unlocked while it goes


def remove_stale_staging(model_dir: Path) -> list[Path]:
    """Remove the staging folders in `model_dir` whose exports no longer run and return them; leave those whose
    lock is held or cannot be checked. Call it before making a staging folder of one's own: under NFS's fcntl
    emulation of flock, testing one's own lock from another descriptor would drop it."""
    removed = []
    for folder in model_dir.glob(f"{STAGING_PREFIX}*"):
        try:
            lock = staging_folder_lock(folder)
        except OSError:  # gone already, not a folder, or no locks here: nothing safe to do
            continue
        if lock is not None:
            try:
                shutil.rmtree(folder, ignore_errors=True)
                removed.append(folder)
            finally:
                os.close(lock)
    return removed


def next_version(model_dir: Path) -> int:
    """One more than the highest integer version folder, or 1."""
    return max(scan_versions(model_dir), default=0) + 1


def write_saved_model(model: keras.Model, functions: dict[str, Callable[..., Any]], path: Path) -> None:
    """The SavedModel with each function as a signature of that name."""
    archive = keras.export.ExportArchive()
    archive.track(model)
    for signature, function in functions.items():
        archive.add_endpoint(signature, function)
    archive.write_out(str(path), verbose=False)
    set_signature_methods(path, {name: SIGNATURE_METHODS[name] for name in functions if name in SIGNATURE_METHODS})


def set_signature_methods(path: Path, methods: dict[str, str]) -> None:
    """Give signatures TF Serving's classify/regress method names in saved_model.pb: TensorFlow 2 writes every
    signature as predict, and TF Serving runs Classify and Regress only on signatures of their own method."""
    if not methods:
        return
    saved_model = saved_model_pb2.SavedModel.FromString((path / "saved_model.pb").read_bytes())
    for meta_graph in saved_model.meta_graphs:
        for name, method in methods.items():
            meta_graph.signature_def[name].method_name = method
    (path / "saved_model.pb").write_bytes(saved_model.SerializeToString())


def read_meta_graph(version_dir: str | Path) -> meta_graph_pb2.MetaGraphDef:
    """The `serve` MetaGraphDef of a SavedModel folder."""
    saved_model = saved_model_pb2.SavedModel.FromString((Path(version_dir) / "saved_model.pb").read_bytes())
    for meta_graph in saved_model.meta_graphs:
        if "serve" in meta_graph.meta_info_def.tags:
            return meta_graph
    raise ValueError(f"{version_dir}/saved_model.pb has no MetaGraph tagged 'serve'; TF Serving cannot load it")


def signature_summary(version_dir: Path) -> dict[str, dict[str, dict[str, Any]]]:
    """{signature: {"inputs"|"outputs": {name: {"dtype", "shape"}}}} as TF Serving will see them."""
    def tensors(mapping) -> dict[str, dict[str, Any]]:
        return {key: {"dtype": tf.dtypes.as_dtype(info.dtype).name,
                      "shape": [dim.size if dim.size >= 0 else None for dim in info.tensor_shape.dim]}
                for key, info in sorted(mapping.items())}

    signatures = read_meta_graph(version_dir).signature_def
    return {name: {"inputs": tensors(sig.inputs), "outputs": tensors(sig.outputs)}
            for name, sig in sorted(signatures.items()) if not name.startswith("__")}


# The validating child dies with the export, however the export ends (SIGTERM, SIGINT, SIGKILL): on Linux the
# kernel sends it SIGKILL when its parent dies (prctl PR_SET_PDEATHSIG), set first thing, before it imports
# TensorFlow (seconds, ~0.5 GB), and followed by a check that the parent did not die before it was set. The death
# signal is tied to the thread that started the child, which waits for it here. It imports only what validating
# needs (tfzoo.unused_imports). argv: parent pid, version folder.
VALIDATE_CHILD = """
import ctypes, os, runpy, signal, sys
PR_SET_PDEATHSIG = 1
if sys.platform.startswith("linux"):
    ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
    if os.getppid() != int(sys.argv[1]):
        sys.exit("tfzoo.export.validate: the export that started it has ended")
from tfzoo.unused_imports import skip_unused_imports
skip_unused_imports()
sys.argv = ["tfzoo.export.validate", *sys.argv[2:]]
runpy.run_module("tfzoo.export.validate", run_name="__main__", alter_sys=True)
"""


def validate_in_fresh_process(version_dir: Path) -> None:
    """Validate the version folder in a new Python process (nothing of this process's Keras state, registered
    models or custom objects helps it pass; it sees only the folder, as TF Serving does). The process ends with
    this one (see VALIDATE_CHILD)."""
    with subprocess.Popen([sys.executable, "-c", VALIDATE_CHILD, str(os.getpid()), str(version_dir)],
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) as child:
        try:
            stdout, stderr = _communicate_in_slices(child)
        except BaseException:
            child.kill()
            raise
    print(stdout, end="")
    if child.returncode != 0:
        raise ExportError(f"the export did not validate, so nothing was put in place:\n{stdout}{stderr}")


def _communicate_in_slices(child: subprocess.Popen[str], seconds: float = 0.5) -> tuple[str, str]:
    """The child's (stdout, stderr) once it ends, waiting `seconds` at a time: a SIGINT that lands on one of
    TensorFlow's threads cannot interrupt a plain wait, and Python raises KeyboardInterrupt only when the main
    thread runs. A retried communicate loses no output."""
    while True:
        try:
            return child.communicate(timeout=seconds)
        except subprocess.TimeoutExpired:
            continue
