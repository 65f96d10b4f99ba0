"""`make bench`: every benchmark, one after another, printing its table."""
import os
import shutil
import subprocess
import sys
from pathlib import Path

# serving_latency.py --pinned (server on one core, wrk and h2load on another) where this machine can run it,
# else its Python clients sharing the cores.
PINNED = all(shutil.which(tool) for tool in ("wrk", "h2load", "taskset")) and {0, 1} <= os.sched_getaffinity(0)
# headlines.py's second pair set is Debian package descriptions, read from dpkg's database.
DEBIAN = Path("/var/lib/dpkg/status").is_file()
BENCHMARKS = [
    ["training_overhead.py"],
    ["distributed_scaling.py"],
    ["serving_latency.py", "--pinned"] if PINNED else ["serving_latency.py"],
    ["serving_latency.py", "--model", "text_generator", "--requests", "400", "--no-robustness"],
    ["generation_speed.py"],
    ["text_quality.py"],
    ["headlines.py"] if DEBIAN else ["headlines.py", "--sets", "library_docs_headlines"],
    ["streaming_data.py"],
    ["tabular.py"],
    ["cli_startup.py"],
]

if __name__ == "__main__":
    here = Path(__file__).parent
    if not PINNED:
        print("note: serving_latency.py runs without --pinned (it needs 2 cores and wrk, h2load, taskset: "
              "apt-get install -y wrk nghttp2-client)", flush=True)
    for script, *args in BENCHMARKS:
        print(f"== {' '.join([script, *args])}", flush=True)
        subprocess.run([sys.executable, str(here / script), *args], check=True)
