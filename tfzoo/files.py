"""Atomic file writes: readers see the old file or the whole new one, never half of it."""
from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

TEMPORARY_MARK = ".tmp"  # .NAME.RANDOM.tmp.SUFFIX: hidden, and never the name of a real file


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike[str]) -> Iterator[Path]:
    """Yield a temporary path beside `path`; on success rename it onto `path`, on error remove it.

    The temporary name keeps the suffix (Keras picks the format from it) and starts with a dot, so
    nothing that scans the folder mistakes it for the real thing.
    """
    final = Path(path)
    final.parent.mkdir(parents=True, exist_ok=True)
    handle, name = tempfile.mkstemp(prefix=f".{final.stem}.", suffix=f"{TEMPORARY_MARK}{final.suffix}",
                                    dir=final.parent)
    os.close(handle)
    temporary = Path(name)
    temporary.unlink()  # writers expect to create the path themselves
    try:
        yield temporary
        os.replace(temporary, final)
    finally:
        if temporary.is_dir():
            shutil.rmtree(temporary, ignore_errors=True)
        elif temporary.exists():
            temporary.unlink()


def write_text_atomic(path: str | os.PathLike[str], text: str) -> Path:
    """Write `text` to `path` atomically and return the path."""
    with atomic_path(path) as temporary:
        temporary.write_text(text, encoding="utf-8")
    return Path(path)


def remove_temporaries(folder: str | os.PathLike[str]) -> list[Path]:
    """Remove what `atomic_path` left in `folder` when its process was killed mid-write; returns what it removed.

    Only for a folder with one writer at a time (a run dir: only its chief writes it), where any temporary present
    at the writer's start belongs to a dead writer.
    """
    stale = list(Path(folder).glob(f".*.*{TEMPORARY_MARK}*"))
    for path in stale:
        shutil.rmtree(path) if path.is_dir() else path.unlink()
    return stale
