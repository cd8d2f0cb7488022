"""How long an execution's dataset takes to write, and the memory an export needs, by size.

    .venv/bin/python benchmarks/dataset.py [--pages 1000 10000] [--segments-per-page 10]

For each size, a fresh home is filled the way a run leaves it (the shipped pipeline's stages:
a fetched page, its markdown, its segments, each object with its sidecar and its lineage row; the
text is real article text from ../shared/corpora/aeb-dev, cut into segments of 250 words), then
`write_dataset` runs as the dataset asset runs it, and `factflow export` writes the segments as
JSON Lines in a process of its own, whose peak RSS is read. Prints, per size, the write time and
its rows and bytes, and the export's time and peak memory, each beside its target.
"""

from __future__ import annotations

import argparse
import os
import resource
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import datetime, timezone
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.corpora import AEB_DEV  # noqa: E402
from factflow_assets.config import load_pipeline  # noqa: E402
from factflow_assets.dataset.build import write_dataset  # noqa: E402
from factflow_assets.engine.executions import create_execution  # noqa: E402
from factflow_assets.settings import PROJECT_ROOT, Settings  # noqa: E402
from resources.database import FactflowDatabase, dispose_engines  # noqa: E402
from resources.db_schema import lineage  # noqa: E402
from resources.storage import ObjectStore, message_key  # noqa: E402

WRITE_TARGET_S = 2.0  # for 1,000 pages (~10,000 segments)
RUN_SHARE_TARGET = 0.05
#: The shipped pipeline's 1,000-page run through benchmarks/throughput.py takes ~17 s (README).
RUN_WALL_S = 17.0


def _texts() -> list[str]:
    """Real article text (aeb-dev's gold article bodies), in pieces of 250 words: one a segment."""
    import json

    words = " ".join(entry["articleBody"] for entry in json.loads((AEB_DEV / "ground-truth.json").read_text()).values()).split()
    return [" ".join(words[i : i + 250]) for i in range(0, len(words) - 250, 250)]


def fill(home: Path, pages: int, per_page: int) -> tuple[FactflowDatabase, ObjectStore, str]:
    os.environ["FACTFLOW_HOME"] = str(home)
    settings = Settings.from_env()
    db = FactflowDatabase(settings.database_url)
    store = ObjectStore(settings.storage_uri)
    pipeline = load_pipeline(PROJECT_ROOT / "pipelines", "web_to_markdown")
    execution = create_execution(db, pipeline).id
    texts = _texts()
    now = datetime.now(timezone.utc)
    rows = []

    def row(stage: str, route: str, message: str, keys: list[str], metadata: dict) -> dict:
        return {
            "id": uuid.uuid4().hex[:26], "execution_id": execution, "route": route, "stage": stage, "adapter_type": stage,
            "message_id": message, "batch_id": "b", "status": "completed", "output_keys": keys, "started_at": now, "finished_at": now,
            "attempt": 1, "config_hash": pipeline.config_hash, "superseded": False, "metadata": metadata,
        }

    for p in range(pages):
        url = f"https://docs.example.com/guide/page-{p}.html"
        page_message = f"page-{p:06d}"
        fetched = message_key(execution, "sitemap_scraper", "web_content_storage", page_message)
        store.put(fetched, b"<html>...</html>", "text/html; charset=utf-8", {"url": url, "status": 200, "fetched_at": now.isoformat(), "message_id": page_message})
        markdown = "\n\n".join(texts[(p * per_page + s) % len(texts)] for s in range(per_page))
        md_message = f"md-{p:06d}"
        md_key = message_key(execution, "markdown_processor", "html_to_markdown", md_message)
        store.put(md_key, markdown.encode(), "text/markdown; charset=utf-8", {"page_message_id": page_message, "title": f"Page {p}", "language": "en", "message_id": md_message, "url": url})
        rows.append(row("html_to_markdown", "markdown_processor", md_message, [md_key], {"url": url}))
        keys = []
        for s in range(per_page):
            key = message_key(execution, "markdown_processor", "smart_segmenter", f"seg-{p:06d}-{s:03d}")
            store.put(key, texts[(p * per_page + s) % len(texts)].encode(), "text/markdown; charset=utf-8", {
                "page_message_id": page_message, "title": f"Page {p}", "heading_path": [f"Page {p}", f"Part {s}"], "segment_index": s,
                "segment_count": per_page, "tokens": 400, "url": url, "message_id": key.rsplit("/", 1)[1],
            })
            keys.append(key)
        rows.append(row("smart_segmenter", "markdown_processor", md_message, keys, {"url": url}))
    with db.engine.begin() as conn:
        for start in range(0, len(rows), 1000):
            conn.execute(lineage.insert(), rows[start : start + 1000])
    return db, store, execution


def export_peak(home: Path, execution: str) -> tuple[float, float]:
    """(seconds, peak MiB) of `factflow export E` in a process of its own."""
    script = (
        "import sys, time; from cli.main import cli; started = time.perf_counter()\n"
        "try:\n    cli(['export', sys.argv[1], '--output', sys.argv[2]], standalone_mode=False)\n"
        "finally:\n    hwm = next(int(l.split()[1]) for l in open('/proc/self/status') if l.startswith('VmHWM:'))\n"
        "    print(time.perf_counter() - started, hwm / 1024)"
    )
    out = home / "segments.jsonl"
    result = subprocess.run([sys.executable, "-c", script, execution, str(out)], capture_output=True, text=True, cwd=PROJECT_ROOT,
                            env={**os.environ, "FACTFLOW_HOME": str(home)}, check=True)
    seconds, peak = result.stdout.split()[-2:]  # peak: VmHWM (ru_maxrss would carry this process's)
    return float(seconds), float(peak)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pages", type=int, nargs="+", default=[1000, 10000])
    parser.add_argument("--segments-per-page", type=int, default=10)
    args = parser.parse_args()
    print(f"{'pages':>7}{'segments':>10}{'write s':>9}{'rows':>9}{'MiB':>8}{'export s':>10}{'export peak MiB':>17}")
    peaks = []
    for pages in args.pages:
        with tempfile.TemporaryDirectory() as folder:
            home = Path(folder)
            db, store, execution = fill(home, pages, args.segments_per_page)
            pipeline = load_pipeline(PROJECT_ROOT / "pipelines", "web_to_markdown")
            started = time.perf_counter()
            result = write_dataset(db, store, execution, pipeline)
            seconds = time.perf_counter() - started
            dispose_engines()
            export_s, peak = export_peak(home, execution)
            peaks.append(peak)
            segments = result.written["segments"]
            size = sum(w.bytes for w in result.written.values()) / 2**20
            print(f"{pages:>7}{segments.rows:>10}{seconds:>9.2f}{segments.rows + result.written['pages'].rows:>9}{size:>8.1f}{export_s:>10.2f}{peak:>17.0f}")
            if pages == 1000:
                print(f"        write {seconds:.2f} s (target <= {WRITE_TARGET_S} s); {seconds / RUN_WALL_S:.1%} of a 1,000-page run's ~{RUN_WALL_S:g} s (target <= {RUN_SHARE_TARGET:.0%})")
    if len(peaks) > 1:
        print(f"export peak memory from the smallest to the largest: {peaks[0]:.0f} -> {peaks[-1]:.0f} MiB (target: flat)")
    print(f"this process peaked at {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MiB")


if __name__ == "__main__":
    main()
