"""A run dir: the folder one training run writes (model.keras, config.json, history.csv, curves.png, metrics.json,
tensorboard/, checkpoints/), and what reads it back. Trainer, exporter and command line all go through here."""
from __future__ import annotations

import datetime as dt
import hashlib
import json
import platform
import shutil
import tempfile
from pathlib import Path
from typing import Any

import keras
import numpy as np
import pandas as pd
import tensorflow as tf

from tfzoo.cluster import cluster_from_tf_config
from tfzoo.datasets import Dataset, load_dataset
from tfzoo.files import write_text_atomic
from tfzoo.tasks import Task, get_task

MODEL_FILE = "model.keras"
CONFIG_FILE = "config.json"
HISTORY_FILE = "history.csv"
CURVES_FILE = "curves.png"
METRICS_FILE = "metrics.json"
TENSORBOARD_DIR = "tensorboard"
CHECKPOINT_DIR = "checkpoints"


def default_run_dir(name: str) -> Path:
    """runs/MODEL/YYYYmmdd-HHMMSS under the working directory."""
    return Path("runs") / name / dt.datetime.now().strftime("%Y%m%d-%H%M%S")


def holds_run(run_dir: Path) -> bool:
    """Whether a run was started in `run_dir` (it has a config or a checkpoint)."""
    return (run_dir / CONFIG_FILE).exists() or tf.train.latest_checkpoint(str(run_dir / CHECKPOINT_DIR)) is not None


def refuse_used_run_dir(run_dir: Path) -> None:
    """A run dir is written once: a finished run is never overwritten, an unfinished one is resumed."""
    if (run_dir / MODEL_FILE).exists():
        raise FileExistsError(f"{run_dir} already holds a trained run; pass another --run-dir (or remove it)")
    if tf.train.latest_checkpoint(str(run_dir / CHECKPOINT_DIR)) is not None:
        raise FileExistsError(f"{run_dir} holds an unfinished run; continue it with --resume "
                              "(or pass another --run-dir)")


def worker_scratch_dir(run_dir: Path) -> Path:
    """The empty temporary folder a non-chief worker writes to, named by the run dir and the worker's task.

    A SIGKILLed worker cannot remove its folder; the name makes the restarted worker (same run dir, same task)
    find and clear it instead of leaving one more behind at every restart.
    """
    cluster = cluster_from_tf_config()
    run = hashlib.sha256(str(run_dir.resolve()).encode()).hexdigest()[:16]
    scratch = Path(tempfile.gettempdir()) / f"tfzoo-worker-{run}-{cluster.task_type}{cluster.task_index}"
    shutil.rmtree(scratch, ignore_errors=True)
    scratch.mkdir(parents=True)
    return scratch


def read_config(run_dir: Path) -> dict[str, Any]:
    """A run's config.json."""
    return json.loads((run_dir / CONFIG_FILE).read_text(encoding="utf-8"))


def load_run(run_dir: str | Path) -> tuple[dict[str, Any], keras.Model]:
    """The config and trained model of a run dir, with a clear error when it is not one."""
    from tfzoo.registry import load_models  # the classes of every registered model's layers, for deserialising

    run_dir = Path(run_dir)
    missing = [f for f in (CONFIG_FILE, MODEL_FILE) if not (run_dir / f).is_file()]
    if missing:
        raise FileNotFoundError(f"{run_dir} is not a finished tfzoo run dir: missing {', '.join(missing)}; "
                                f"train one with `tfzoo train MODEL --run-dir {run_dir}`")
    load_models()
    return read_config(run_dir), keras.saving.load_model(run_dir / MODEL_FILE)


def run_task(config: dict[str, Any]) -> Task:
    """The task a run trained (config.json's; a binary model trained on a table of several classes is multiclass),
    or its model's for a run that predates the record."""
    from tfzoo.registry import get_spec

    return get_task(config["task"]) if "task" in config else get_spec(config["model"]).task


def run_data(run_dir: Path, config: dict[str, Any]) -> Dataset:
    """The data a run was trained on, rebuilt from its config.json; ValueError when it no longer gives the same
    examples (its fingerprint differs), since held-out metrics and warm-up requests would then come from other data.
    """
    data = load_dataset(**config["dataset"])
    if data.fingerprint != config["dataset_fingerprint"]:
        raise ValueError(f"the data behind {run_dir} changed since training (fingerprint differs): "
                         f"{config['dataset']} no longer gives the same examples; restore that data or train again")
    return data


def keep_history_rows(path: Path, finished_epochs: int) -> None:
    """Keep the history rows of the epochs the checkpoint finished; the others are logged again when they end."""
    history = history_frame(path)
    if finished_epochs == 0 or history.empty:
        path.unlink(missing_ok=True)  # the CSV logger starts the file again, header included
    else:
        write_text_atomic(path, history[history["epoch"] < finished_epochs].to_csv(index=False))


def read_history(path: Path) -> dict[str, list[float]]:
    """Per-epoch metrics from history.csv (every epoch of the run, resumed parts included).

    The row of an epoch a resume continued part-way has training metrics over the steps run after the resume
    (NaN when none were left) and validation metrics as usual.
    """
    history = history_frame(path)
    return {column: [float(v) for v in history[column]] for column in history.columns if column != "epoch"}


def history_frame(path: Path) -> pd.DataFrame:
    """history.csv as a table; empty when the run has none yet (stopped before an epoch ended)."""
    try:
        return pd.read_csv(path)
    except (FileNotFoundError, pd.errors.EmptyDataError):
        return pd.DataFrame()


def write_json(path: Path, payload: dict[str, Any]) -> None:
    """Write a JSON file atomically, pretty-printed for people."""
    write_text_atomic(path, json.dumps(payload, indent=2, sort_keys=True) + "\n")


def as_json(value: Any) -> Any:
    """A value as config.json stores it (tuples become lists), so given and stored values compare."""
    return json.loads(json.dumps(value))


def now() -> str:
    """The time in UTC, to the second, as ISO 8601."""
    return dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")


def package_versions() -> dict[str, str]:
    """Versions that decide whether a run can be reproduced."""
    from tfzoo import __version__

    return {"tfzoo": __version__, "tensorflow": tf.__version__, "keras": keras.__version__,
            "numpy": np.__version__, "pandas": pd.__version__, "python": platform.python_version()}


def weights_digest(model: keras.Model) -> str:
    """SHA-256 over every weight: equal digests mean identical models (e.g. on every worker of a job)."""
    digest = hashlib.sha256()
    for weight in model.get_weights():
        digest.update(np.ascontiguousarray(weight).tobytes())
    return digest.hexdigest()
