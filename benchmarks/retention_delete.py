"""What `factflow execution delete` costs for a 1,000-page execution, on local files and on S3.

    .venv/bin/python benchmarks/retention_delete.py [--pages 1000]

For each storage (SQLite database), in a fresh FACTFLOW_HOME: one execution of the shipped
web_to_markdown pipeline over the benchmark site (../shared/corpora/aeb-dev articles, no latency),
then `execution delete E --dry-run` (counting what would go) and `execution delete E --yes`, each
as a new `factflow` process as an operator types it. Prints what went (objects, bytes, lineage
rows, Dagster runs) and the wall time of both commands, and checks nothing is left under the
execution's prefix. S3 is moto's server on loopback, reached through s3fs as MinIO would be.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import secrets
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.site import benchmark_site  # noqa: E402

FACTFLOW = Path(sys.executable).parent / "factflow"
CREDENTIALS = {"AWS_ACCESS_KEY_ID": "bench", "AWS_SECRET_ACCESS_KEY": "bench", "AWS_DEFAULT_REGION": "us-east-1"}


def factflow(env: dict, *args: str) -> tuple[float, dict]:
    started = time.perf_counter()
    done = subprocess.run([str(FACTFLOW), *args, "--output", "json"], env=env, capture_output=True, text=True)
    wall = time.perf_counter() - started
    if done.returncode != 0:
        raise SystemExit(f"factflow {' '.join(args)} failed: {done.stderr.strip() or done.stdout[-500:]}")
    return wall, json.loads(done.stdout)


def measure(env: dict, sitemap: str, label: str) -> None:
    _, execution = factflow(env, "execution", "start", "web_to_markdown", "--set", f"sitemap_url={sitemap}")
    dry_wall, dry = factflow(env, "execution", "delete", execution["id"], "--dry-run")
    [planned] = dry["executions"]
    wall, done = factflow(env, "execution", "delete", execution["id"], "--yes")
    left = subprocess.run([str(FACTFLOW), "storage", "list", "--execution", execution["id"], "--output", "json"], env=env, capture_output=True, text=True)
    assert done["deleted"] == [execution["id"]] and left.returncode == 1 and "no execution" in left.stderr, left.stdout[:200] + left.stderr
    print(f"{label:6}: {planned['objects']} objects ({planned['bytes'] / 2**20:.0f} MiB), {planned['lineage_rows']} lineage rows, "
          f"{planned['runs']} run(s): dry run {dry_wall:.2f} s, delete {wall:.2f} s", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pages", type=int, default=1000)
    args = parser.parse_args()

    import boto3
    from moto.server import ThreadedMotoServer

    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # moto's request log
    moto = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    moto.start()
    host, port = moto.get_host_and_port()
    endpoint = f"http://{host}:{port}"
    try:
        with benchmark_site(args.pages) as site:
            for storage in ("files", "s3"):
                with tempfile.TemporaryDirectory() as home:
                    env = {k: v for k, v in os.environ.items() if not k.startswith("FACTFLOW_") and k != "DAGSTER_HOME"}
                    env["FACTFLOW_HOME"] = home
                    if storage == "s3":
                        env.update(CREDENTIALS)
                        bucket = f"bench-{secrets.token_hex(4)}"
                        boto3.client("s3", endpoint_url=endpoint, **{k.lower(): v for k, v in CREDENTIALS.items() if k != "AWS_DEFAULT_REGION"},
                                     region_name="us-east-1").create_bucket(Bucket=bucket)
                        env.update(FACTFLOW_STORAGE_URI=f"s3://{bucket}/factflow", FACTFLOW_S3_ENDPOINT_URL=endpoint)
                    measure(env, site.url("/sitemap_index.xml"), storage)
    finally:
        moto.stop()


if __name__ == "__main__":
    main()
