"""`export`: a trained run -> MODEL_BASE/NAME/VERSION/, TF Serving's layout, whole or not at all."""
from __future__ import annotations

import datetime as dt
import json
import re
import shutil
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

import keras
import numpy as np
import tensorflow as tf
from tensorflow.core.protobuf import meta_graph_pb2, saved_model_pb2

from tfzoo.datasets import load_dataset
from tfzoo.datasets.text import example_prompts
from tfzoo.export.signatures import IMAGE_BYTES_INPUT, IMAGE_BYTES_SIGNATURE, serving_functions
from tfzoo.export.warmup import write_warmup
from tfzoo.registry import get_spec
from tfzoo.serving.layout import ASSETS_EXTRA, WARMUP_FILE, scan_versions
from tfzoo.text.generation import GENERATE_SIGNATURE, PROMPT
from tfzoo.training.trainer import TrainResult, load_run, package_versions

METADATA_FILE = "tfzoo.json"
WARMUP_BATCH_SIZES = (1, 2, 4, 8, 16, 32)
# TF Serving puts model names in REST paths (/v1/models/NAME) and folder names.
MODEL_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*")


class ExportError(RuntimeError):
    """The export could not be written or did not validate; nothing was put in place."""


def export(
    run_dir_or_model: str | Path | TrainResult,
    model_base: str | Path,
    *,
    name: str | None = None,
    version: int | None = None,
) -> Path:
    """Export a trained run as MODEL_BASE/NAME/VERSION/ and return that folder.

    The SavedModel (tag `serve`, `serving_default` plus the model's named signatures), its warm-up requests
    from held-out examples and `tfzoo.json` are written to a hidden staging folder beside the version, validated
    in a fresh process, then renamed into place: TF Serving never sees half an export. `version` defaults to
    the next free integer; an existing version is never overwritten.
    """
    run_dir = run_dir_or_model.run_dir if isinstance(run_dir_or_model, TrainResult) else Path(run_dir_or_model)
    config, model = load_run(run_dir)
    spec = get_spec(config["model"])
    name = name or config["model"]
    if not MODEL_NAME.fullmatch(name):
        raise ValueError(f"model name {name!r} must be letters, digits, '_', '.' or '-' (it becomes a URL path)")
    model_dir = Path(model_base) / name
    version = next_version(model_dir) if version is None else version
    if isinstance(version, bool) or not isinstance(version, int) or version < 1:
        raise ValueError(f"version must be a positive integer (TF Serving's version folders), got {version!r}")
    final = model_dir / str(version)
    if final.exists():
        raise FileExistsError(f"{final} already exists; versions are never overwritten: pass another --version "
                              f"or leave it out to take the next free one ({next_version(model_dir)})")

    data = load_dataset(**config["dataset"])
    if data.fingerprint != config["dataset_fingerprint"]:
        raise ValueError(f"the held-out data of {run_dir} changed since training; cannot build warm-up requests")
    staged = model_dir / f".staging-{uuid.uuid4().hex}" / str(version)  # hidden: TF Serving skips it
    try:
        write_saved_model(model, spec, staged)
        (staged / ASSETS_EXTRA).mkdir()
        write_warmup(staged / ASSETS_EXTRA / WARMUP_FILE, name, warmup_requests(spec, data.arrays("test")[0]))
        metadata = {
            "model": config["model"], "name": name, "version": version, "run_dir": str(run_dir.resolve()),
            "hparams": config["hparams"], "dataset": config["dataset"],
            "dataset_fingerprint": config["dataset_fingerprint"],
            "metrics": json.loads((run_dir / "metrics.json").read_text(encoding="utf-8")),
            "signatures": signature_summary(staged), "versions": package_versions(),
            "exported": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        }
        (staged / ASSETS_EXTRA / METADATA_FILE).write_text(json.dumps(metadata, indent=2) + "\n", encoding="utf-8")
        validate_in_fresh_process(staged)
        staged.rename(final)  # atomic on one filesystem; fails rather than replace a version that appeared meanwhile
    except OSError as error:
        if final.exists():
            raise FileExistsError(f"{final} appeared while exporting; versions are never overwritten") from error
        raise
    finally:
        shutil.rmtree(staged.parent, ignore_errors=True)
    return final


def next_version(model_dir: Path) -> int:
    """One more than the highest integer version folder, or 1."""
    return max(scan_versions(model_dir), default=0) + 1


def write_saved_model(model: keras.Model, spec: Any, path: Path) -> None:
    """The SavedModel with every serving signature of the model."""
    archive = keras.export.ExportArchive()
    archive.track(model)
    for signature, function in serving_functions(model, spec).items():
        archive.add_endpoint(signature, function)
    archive.write_out(str(path), verbose=False)


def warmup_requests(spec: Any, held_out: np.ndarray) -> list[tuple[str, dict[str, np.ndarray]]]:
    """Batches of real held-out examples for each signature, at the sizes the batcher is likely to form."""
    if spec.task == "language_model":
        return text_warmup_requests(held_out)
    sizes = sorted({min(size, len(held_out)) for size in WARMUP_BATCH_SIZES})
    requests = [("serving_default", {spec.serving_input: held_out[:size].astype(np.float32)}) for size in sizes]
    if spec.serving_input == "image":
        pixels = np.clip(np.rint(held_out[:8]), 0, 255).astype(np.uint8)[..., np.newaxis]
        png = np.array([tf.io.encode_png(image).numpy() for image in pixels], dtype=object)
        requests += [(IMAGE_BYTES_SIGNATURE, {IMAGE_BYTES_INPUT: png[:size]}) for size in (1, len(png))]
    return requests


def text_warmup_requests(held_out: np.ndarray) -> list[tuple[str, dict[str, np.ndarray]]]:
    """Prompts from held-out examples through serving_default (greedy), and through the controls signature greedy
    and sampled with seeds. Few and short (a step per token), yet every path of the graph runs."""
    prompts = np.array([text.encode("utf-8") for text in example_prompts(held_out[:8])], dtype=object)
    temperature, top_k, top_p = np.array([(0.0, 0, 1.0), (0.8, 20, 1.0), (0.8, 0, 0.9), (1.0, 1, 1.0)][: len(prompts)]).T
    controls = {PROMPT: prompts[: len(temperature)], "max_new_tokens": np.full(len(temperature), 16, np.int32),
                "temperature": temperature.astype(np.float32), "top_k": top_k.astype(np.int32),
                "top_p": top_p.astype(np.float32), "seed": np.arange(len(temperature), dtype=np.int64)}
    return [("serving_default", {PROMPT: prompts[:1]}), ("serving_default", {PROMPT: prompts}),
            (GENERATE_SIGNATURE, controls)]


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


def validate_in_fresh_process(version_dir: Path) -> None:
    """Run `tfzoo validate` in a new Python process (nothing of this process's Keras state helps it pass)."""
    result = subprocess.run([sys.executable, "-m", "tfzoo", "validate", str(version_dir)],
                            capture_output=True, text=True)
    print(result.stdout, end="")
    if result.returncode != 0:
        raise ExportError(f"the export did not validate, so nothing was put in place:\n{result.stdout}{result.stderr}")
