"""TensorFlow's start-up chatter kept off tfzoo's commands, unless the user asks for it.

Where each line comes from, and so where it is stopped:

- `I... port.cc] oneDNN custom operations are on`, `I... cudart_stub.cc] Could not find cuda drivers` and the
  `WARNING: All log messages before absl::InitializeLog() ...` line above them are absl log lines written by the
  C++ runtime while `import tensorflow` loads its shared libraries, before anything could set absl's log level:
  `TF_CPP_MIN_LOG_LEVEL` does not reach them. They come twice because two of TensorFlow's libraries carry their own
  copy of absl and of those notices: `_pywrap_tensorflow_internal` and, later in the same import,
  `tensorflow/python/profiler/internal/_pywrap_profiler_plugin.so`. Only the file descriptor they write to can
  hold them back: a quiet process imports TensorFlow with fd 2 pointed at a file (an import hook, whoever imports
  it first), then passes on every other line.
- `cpu_feature_guard.cc] This TensorFlow binary is optimized ...` and TensorFlow's later C++ INFO and WARNING lines
  go through TensorFlow's own logging, which `TF_CPP_MIN_LOG_LEVEL=3` (set before the import) silences, as it
  does the `failed call to cuInit` error of a machine without a GPU.
- Deprecation notices (`tf_logging`, `absl.logging`) and Python warnings from TensorFlow and Keras: their loggers
  and the warning filters, set here before TensorFlow is imported.

The decision is made once per command and passed on in `TFZOO_VERBOSE` to the processes a command starts (the
validation child of `tfzoo export`, a server): `import tfzoo` in them applies it.
"""
from __future__ import annotations

import contextlib
import importlib.abc
import importlib.machinery
import logging
import os
import re
import sys
import tempfile
import warnings
from collections.abc import Iterator
from typing import Any

VERBOSE_ENV = "TFZOO_VERBOSE"  # "1": TensorFlow's own output as it comes; "0": quiet; unset: decided here
LOG_LEVEL_ENV = "TF_CPP_MIN_LOG_LEVEL"

# The start-up notices of TensorFlow's libraries: absl's line about InitializeLog, and absl INFO/WARNING lines
# ("I0000 00:00:1796531166.770610   24171 port.cc:153] ..."). Other lines (absl errors, Python's) are passed on.
_NOTICE = re.compile(r"WARNING: All log messages before absl::InitializeLog\(\)|[IW]\d{4} \d\d:\d\d:\d+\.\d+ +\d+ ")
# Python packages whose warnings a quiet command does not show.
_NOISY_PACKAGES = r"(tensorflow|keras|tf_keras|absl|google\.protobuf|tensorflow_serving|h5py|ml_dtypes)(\.|$)"

def configure(verbose: bool = False) -> bool:
    """Quiet TensorFlow for this process and the processes it starts, unless `verbose`, `TFZOO_VERBOSE=1`, or the
    user set `TF_CPP_MIN_LOG_LEVEL` (then TensorFlow logs as they asked). Call before TensorFlow is imported;
    returns whether the process is quiet."""
    decided = os.environ.get(VERBOSE_ENV)
    if verbose:
        quiet = False
    elif decided in ("0", "1"):  # set by the command that started this process, or by the user
        quiet = decided == "0"
    else:
        quiet = LOG_LEVEL_ENV not in os.environ
    os.environ[VERBOSE_ENV] = "0" if quiet else "1"
    if quiet:
        # TensorFlow's C++ log lines, errors too ("failed call to cuInit" on every machine without a GPU): an error
        # that matters reaches the user as the Python exception it raises.
        os.environ[LOG_LEVEL_ENV] = "3"
        warnings.filterwarnings("ignore", module=_NOISY_PACKAGES)
        warnings.filterwarnings("ignore", category=DeprecationWarning)
        for name in ("tensorflow", "absl"):  # tf_logging's deprecation notices; absl.logging's handler
            logging.getLogger(name).setLevel(logging.ERROR)
        if "tensorflow" not in sys.modules and not any(isinstance(f, _QuietImport) for f in sys.meta_path):
            sys.meta_path.insert(0, _QuietImport())
    return quiet


class _QuietImport(importlib.abc.MetaPathFinder):
    """Runs the first `import tensorflow` of the process with its libraries' start-up notices dropped."""

    def find_spec(self, name: str, path: Any = None, target: Any = None) -> importlib.machinery.ModuleSpec | None:
        if name != "tensorflow":
            return None
        sys.meta_path.remove(self)  # once, and so that the finders below give TensorFlow's own spec
        spec = next((spec for finder in sys.meta_path if hasattr(finder, "find_spec")
                     for spec in [finder.find_spec(name, path, target)] if spec is not None), None)
        if spec is not None and spec.loader is not None:
            loader_exec = spec.loader.exec_module

            def exec_module(module: Any) -> None:
                with _start_up_notices_dropped():
                    loader_exec(module)
                if "absl.logging" in sys.modules:  # TensorFlow imported it; it sets its logger from its verbosity
                    sys.modules["absl.logging"].set_verbosity("error")

            spec.loader.exec_module = exec_module  # type: ignore[method-assign]
        return spec


@contextlib.contextmanager
def _start_up_notices_dropped() -> Iterator[None]:
    """Point fd 2 (what C++ writes to) at a file, then pass on what is not a start-up notice."""
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile() as capture:
        os.dup2(capture.fileno(), 2)
        try:
            yield
        finally:
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)
            capture.seek(0)
            lines = capture.read().decode("utf-8", "replace").splitlines(keepends=True)
            kept = [line for line in lines if not _NOTICE.match(line)
                    and not line.startswith("To enable the following instructions:")]  # cpu_feature_guard's 2nd line
            if kept:
                sys.stderr.write("".join(kept))
                sys.stderr.flush()
