"""`make bench`: every benchmark, one after another, printing its table."""
import subprocess
import sys
from pathlib import Path

BENCHMARKS = [
    ["training_overhead.py"],
    ["distributed_scaling.py"],
    ["serving_latency.py"],
    ["serving_latency.py", "--model", "text_generator", "--requests", "400", "--no-robustness"],
    ["generation_speed.py"],
    ["text_quality.py"],
    ["streaming_data.py"],
    ["tabular.py"],
    ["cli_startup.py"],
]

if __name__ == "__main__":
    here = Path(__file__).parent
    for script, *args in BENCHMARKS:
        print(f"== {' '.join([script, *args])}", flush=True)
        subprocess.run([sys.executable, str(here / script), *args], check=True)
