"""TensorFlow's start-up chatter kept off tfzoo's commands, unless the user asks for it.

Where each line comes from, and so where it is stopped:

- `I... port.cc] oneDNN custom operations are on`, `I... cudart_stub.cc] Could not find cuda drivers` and the
  `WARNING: All log messages before absl::InitializeLog() ...` line above them are absl log lines written by the
  C++ runtime while `import tensorflow` loads its shared libraries, before anything could set absl's log level:
  `TF_CPP_MIN_LOG_LEVEL` does not reach them. They come twice because two of TensorFlow's libraries carry their own
  copy of absl and of those notices: `_pywrap_tensorflow_internal` and, later in the same import,
  `tensorflow/python/profiler/internal/_pywrap_profiler_plugin.so`. Only the file descriptor they write to can
  hold them back: `import_tensorflow` points fd 2 at a file for the import and passes on every other line.
- `cpu_feature_guard.cc] This TensorFlow binary is optimized ...` and TensorFlow's later C++ INFO and WARNING lines
  go through TensorFlow's own logging, which `TF_CPP_MIN_LOG_LEVEL=3` (set before the import) silences, as it
  does the `failed call to cuInit` error of a machine without a GPU.
- Deprecation notices (`tf_logging`, `absl.logging`) and Python warnings from TensorFlow and Keras: their loggers
  and the warning filters, set here before TensorFlow is imported.

The decision is made once per command and passed on in `TFZOO_VERBOSE` to the processes a command starts (the
validation child of `tfzoo export`, a server), so they follow it.
"""
from __future__ import annotations

import contextlib
import logging
import os
import re
import sys
import tempfile
import warnings
from collections.abc import Iterator

VERBOSE_ENV = "TFZOO_VERBOSE"  # "1": TensorFlow's own output as it comes; "0": quiet; unset: decided here
LOG_LEVEL_ENV = "TF_CPP_MIN_LOG_LEVEL"

# The start-up notices of TensorFlow's libraries: absl's line about InitializeLog, and absl INFO/WARNING lines
# ("I0000 00:00:1796531166.770610   24171 port.cc:153] ..."). absl ERROR and FATAL lines are passed on.
_NOTICE = re.compile(r"WARNING: All log messages before absl::InitializeLog\(\)|[IW]\d{4} \d\d:\d\d:\d+\.\d+ +\d+ ")
# Python packages whose warnings a quiet command does not show.
_NOISY_PACKAGES = r"(tensorflow|keras|tf_keras|absl|google\.protobuf|tensorflow_serving|h5py|ml_dtypes)(\.|$)"

_quiet = False


def configure(verbose: bool = False) -> bool:
    """Quiet TensorFlow for this process and the processes it starts, unless `verbose`, `TFZOO_VERBOSE=1`, or the
    user set `TF_CPP_MIN_LOG_LEVEL` (then TensorFlow logs as they asked). Call before TensorFlow is imported;
    returns whether the process is quiet."""
    global _quiet
    decided = os.environ.get(VERBOSE_ENV)
    if verbose:
        quiet = False
    elif decided in ("0", "1"):  # set by the command that started this process, or by the user
        quiet = decided == "0"
    else:
        quiet = LOG_LEVEL_ENV not in os.environ
    os.environ[VERBOSE_ENV] = "0" if quiet else "1"
    _quiet = quiet
    if quiet:
        # TensorFlow's C++ log lines, errors too ("failed call to cuInit" on every machine without a GPU): an error
        # that matters reaches the user as the Python exception it raises.
        os.environ[LOG_LEVEL_ENV] = "3"
        warnings.filterwarnings("ignore", module=_NOISY_PACKAGES)
        warnings.filterwarnings("ignore", category=DeprecationWarning)
        for name in ("tensorflow", "absl"):  # tf_logging's deprecation notices; absl.logging's handler
            logging.getLogger(name).setLevel(logging.ERROR)
    return quiet


def import_tensorflow() -> None:
    """Import TensorFlow, holding back its libraries' start-up notices in a quiet process (see the module doc)."""
    with start_up_notices_dropped():
        import tensorflow  # noqa: F401


@contextlib.contextmanager
def start_up_notices_dropped() -> Iterator[None]:
    """In a quiet process that has not imported TensorFlow yet, around code that may import it: point fd 2 (what
    C++ writes to) at a file, then pass on what is not a start-up notice. Elsewhere, nothing."""
    if "tensorflow" in sys.modules or not _quiet:
        yield
        return
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
    if "absl.logging" in sys.modules:  # TensorFlow imported it; absl sets its logger's level from its own verbosity
        sys.modules["absl.logging"].set_verbosity("error")
