"""A demo-size execution on each backend: SQLite or PostgreSQL × local files or S3.

    .venv/bin/python benchmarks/backends.py [--runs 3] [--postgres postgresql+psycopg2://postgres@127.0.0.1:5432/postgres]

For each combination, in a fresh FACTFLOW_HOME (a fresh PostgreSQL database, a fresh bucket on a
moto S3 server on loopback), `factflow execution start web_to_markdown` against the demo site,
as a new process each time: the wall time of the command and the execution's own duration
(median of the runs; the first run of each combination also creates the schema).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import secrets
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from factflow_assets.demo.site import demo_site  # noqa: E402

FACTFLOW = Path(sys.executable).parent / "factflow"
CREDENTIALS = {"AWS_ACCESS_KEY_ID": "bench", "AWS_SECRET_ACCESS_KEY": "bench", "AWS_DEFAULT_REGION": "us-east-1"}


def run_once(env: dict, sitemap: str) -> tuple[float, float]:
    started = time.perf_counter()
    done = subprocess.run([str(FACTFLOW), "execution", "start", "web_to_markdown", "--set", f"sitemap_url={sitemap}", "--output", "json"],
                          env=env, capture_output=True, text=True)
    wall = time.perf_counter() - started
    if done.returncode != 0:
        raise SystemExit(f"execution failed: {done.stderr.strip() or done.stdout[-500:]}")
    return wall, json.loads(done.stdout)["duration_s"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--postgres", default="postgresql+psycopg2://postgres@127.0.0.1:5432/postgres", help="an admin URL; a database is created and dropped")
    args = parser.parse_args()

    import boto3
    from moto.server import ThreadedMotoServer
    from sqlalchemy import create_engine, text

    os.environ.update(CREDENTIALS)
    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # moto's request log
    moto = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    moto.start()
    host, port = moto.get_host_and_port()
    endpoint = f"http://{host}:{port}"
    admin = create_engine(args.postgres, isolation_level="AUTOCOMMIT")
    try:
        with demo_site() as site:
            sitemap = site.url("/sitemap_index.xml")
            for database in ("sqlite", "postgres"):
                for storage in ("file", "s3"):
                    with tempfile.TemporaryDirectory() as home:
                        env = {k: v for k, v in os.environ.items() if not k.startswith("FACTFLOW_") and k != "DAGSTER_HOME"}
                        env["FACTFLOW_HOME"] = home
                        db_name = None
                        if database == "postgres":
                            db_name = f"factflow_bench_{secrets.token_hex(4)}"
                            with admin.connect() as conn:
                                conn.execute(text(f'CREATE DATABASE "{db_name}"'))
                            env["FACTFLOW_DATABASE_URL"] = args.postgres.rsplit("/", 1)[0] + f"/{db_name}"
                        if storage == "s3":
                            bucket = f"bench-{secrets.token_hex(4)}"
                            boto3.client("s3", endpoint_url=endpoint).create_bucket(Bucket=bucket)
                            env.update(FACTFLOW_STORAGE_URI=f"s3://{bucket}/factflow", FACTFLOW_S3_ENDPOINT_URL=endpoint)
                        try:
                            results = [run_once(env, sitemap) for _ in range(args.runs)]
                        finally:
                            if db_name:
                                with admin.connect() as conn:
                                    conn.execute(text(f'DROP DATABASE IF EXISTS "{db_name}" WITH (FORCE)'))
                        walls, durations = zip(*results)
                        print(f"{database:8} + {storage:4}: wall {statistics.median(walls):.2f} s (first {walls[0]:.2f} s), "
                              f"execution {statistics.median(durations):.2f} s (median of {args.runs})")
    finally:
        moto.stop()
        admin.dispose()


if __name__ == "__main__":
    main()
