"""TF Serving's layout on disk: MODEL_BASE/NAME/VERSION/{saved_model.pb, variables/, assets/, assets.extra/}.

Shared by the exporter that writes it, the config writer that lists it and the server that loads it.
"""
from __future__ import annotations

import os
import re
from pathlib import Path

SERVE_TAG = "serve"
SAVED_MODEL_FILES = ("saved_model.pb", "saved_model.pbtxt")
ASSETS_EXTRA = "assets.extra"
WARMUP_FILE = "tf_serving_warmup_requests"  # in assets.extra/, replayed at load
MAX_WARMUP_RECORDS = 1000  # WarmupConsts::kMaxNumRecords: TF Serving refuses a longer warm-up file
# TF Serving turns every child folder whose whole name is a number into a version; anything else (hidden folders,
# an exporter's staging folder) is ignored.
_VERSION_NAME = re.compile(r"[0-9]+")


def scan_versions(base_path: str | os.PathLike[str]) -> dict[int, Path]:
    """The version folders under a model's base path: {version: folder}; empty when the base path does not exist."""
    try:
        entries = list(os.scandir(base_path))
    except (FileNotFoundError, NotADirectoryError):
        return {}
    return {int(e.name): Path(e.path) for e in entries if _VERSION_NAME.fullmatch(e.name) and e.is_dir()}
