"""Wall time of `factflow demo` from a cold process, in a fresh FACTFLOW_HOME each time.

    .venv/bin/python benchmarks/demo_wall_time.py [--runs 5]

Prints each run's wall time, the median, and the execution's own duration (first stage start to
last stage end, from the factflow database), so the fixed cost of the process (imports, Dagster
instance, definitions) can be told apart from the pipeline's work.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

FACTFLOW = Path(sys.executable).parent / "factflow"


def one_run() -> tuple[float, float]:
    with tempfile.TemporaryDirectory() as home:
        env = {**os.environ, "FACTFLOW_HOME": home}
        env.pop("DAGSTER_HOME", None)
        started = time.perf_counter()
        subprocess.run([str(FACTFLOW), "demo", "--output", "json"], env=env, check=True, capture_output=True)
        wall = time.perf_counter() - started
        listed = subprocess.run([str(FACTFLOW), "execution", "list", "--output", "json"], env=env, check=True, capture_output=True, text=True)
        return wall, json.loads(listed.stdout)[0]["duration_s"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    walls, executions = [], []
    for index in range(args.runs):
        wall, execution = one_run()
        walls.append(wall)
        executions.append(execution)
        print(f"run {index + 1}: factflow demo {wall:.2f} s wall, execution {execution:.2f} s")
    print(f"median: {statistics.median(walls):.2f} s wall, {statistics.median(executions):.2f} s execution "
          f"({args.runs} runs, {os.cpu_count()} cores)")


if __name__ == "__main__":
    main()
