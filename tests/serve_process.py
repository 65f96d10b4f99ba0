"""`tfzoo serve` as a separate process on 127.0.0.1, as a real server runs, for the tests that need its process
(signals, memory) rather than only its ports (those use tfzoo.serving.server.server_process)."""
from __future__ import annotations

import queue
import subprocess
import sys
import threading

from tfzoo.serving.server import free_port

WAIT = 120.0  # bound on waits that should end far sooner (a hung server fails the test instead of hanging it)


def start_server(*flags: str) -> tuple[subprocess.Popen, int, int]:
    """`tfzoo serve FLAGS...` (tensorflow_model_server's flags) on free ports; returns (process, REST port,
    gRPC port) once it answers."""
    rest_port, grpc_port = free_port(), free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "tfzoo", "serve", *flags, f"--port={grpc_port}", f"--rest_api_port={rest_port}"],
        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    lines: queue.Queue[str] = queue.Queue()  # read in a thread, so that a silent server cannot hang the test
    threading.Thread(target=lambda: list(map(lines.put, process.stdout)), daemon=True).start()
    line = ""
    while "REST on" not in line:
        assert process.poll() is None, "tfzoo serve exited before it was ready"
        line = lines.get(timeout=WAIT)
    return process, rest_port, grpc_port


def end(process: subprocess.Popen) -> None:
    """Kill the server if it still runs."""
    if process.poll() is None:
        process.kill()
        process.wait()
