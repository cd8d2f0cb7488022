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
import hashlib
import os
import resource
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.corpora import AEB_DEV  # noqa: E402
from factflow_assets.config import load_pipeline  # noqa: E402
from factflow_assets.dataset.build import write_dataset  # noqa: E402
from factflow_assets.dataset.duplicates import shingle_signature  # noqa: E402
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
    now = datetime.now(UTC)
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
        store.put(
            fetched, b"<html>...</html>", "text/html; charset=utf-8", {"url": url, "status": 200, "fetched_at": now.isoformat(), "message_id": page_message}
        )
        markdown = "\n\n".join(texts[(p * per_page + s) % len(texts)] for s in range(per_page))
        md_message = f"md-{p:06d}"
        md_key = message_key(execution, "markdown_processor", "html_to_markdown", md_message)
        store.put(
            md_key,
            markdown.encode(),
            "text/markdown; charset=utf-8",
            {
                "page_message_id": page_message,
                "title": f"Page {p}",
                "language": "en",
                "message_id": md_message,
                "url": url,
                "minhash": shingle_signature(markdown),  # as html_to_markdown's workers leave it
                "words": len(markdown.split()),
            },
        )
        rows.append(row("html_to_markdown", "markdown_processor", md_message, [md_key], {"url": url}))
        keys = []
        for s in range(per_page):
            key = message_key(execution, "markdown_processor", "smart_segmenter", f"seg-{p:06d}-{s:03d}")
            store.put(
                key,
                texts[(p * per_page + s) % len(texts)].encode(),
                "text/markdown; charset=utf-8",
                {
                    "page_message_id": page_message,
                    "title": f"Page {p}",
                    "heading_path": [f"Page {p}", f"Part {s}"],
                    "segment_index": s,
                    "segment_count": per_page,
                    "tokens": 400,
                    "url": url,
                    "message_id": key.rsplit("/", 1)[1],
                },
            )
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
    result = subprocess.run(
        [sys.executable, "-c", script, execution, str(out)],
        capture_output=True,
        text=True,
        cwd=PROJECT_ROOT,
        env={**os.environ, "FACTFLOW_HOME": str(home)},
        check=True,
    )
    seconds, peak = result.stdout.split()[-2:]  # peak: VmHWM (ru_maxrss would carry this process's)
    return float(seconds), float(peak)


def duplicate_figures() -> tuple[float, int, int]:
    """(share of known duplicate pairs found, distinct docs-dev pages flagged, docs-dev pages):
    60 articles of aeb-dev, each with a print view (a header line more), `?utm=` and trailing-slash
    variants (the same text), a corrected copy (two words fixed) and a syndicated copy with a
    paragraph of its own on top; then docs-dev's 146 distinct pages alone."""
    import json

    from benchmarks.corpora import CORPORA
    from benchmarks.docs_fidelity import SITE_ROOT, load_pages
    from factflow_assets.dataset.duplicates import PageFacts, find_duplicates, shingle_signature, word_count
    from factflow_assets.extraction.markdown_extraction import extract_markdown

    def facts(name: str, text: str, order: int) -> PageFacts:
        digest = hashlib.sha256(text.encode()).hexdigest()
        return PageFacts(
            name, f"https://site.test/{name}", f"https://site.test/{name}", None, digest, (order, ""), word_count(text), shingle_signature(text)
        )

    articles = [e["articleBody"] for e in json.loads((AEB_DEV / "ground-truth.json").read_text()).values() if len(e["articleBody"].split()) > 300][:60]
    pages, expected = [], {}
    for index, text in enumerate(articles):
        words = text.split()
        corrected = " ".join(word + ("s" if position in (len(words) // 3, 2 * len(words) // 3) else "") for position, word in enumerate(words))
        variants = {
            "print": "Printed from news.example.com on 1 March 2026.\n\n" + text,
            "utm": text,
            "slash": text,
            "corrected": corrected,
            "syndicated": "Republished with permission from the original publisher, who holds all rights to it.\n\n" + text,
        }
        pages.append(facts(f"a{index}", text, index))
        for kind, variant in variants.items():
            pages.append(facts(f"a{index}-{kind}", variant, 1000 + index))
            expected[f"a{index}-{kind}"] = f"a{index}"
    found = find_duplicates(pages)
    recall = sum(1 for name, original in expected.items() if name in found and found[name].of == original) / len(expected)
    docs = [(site, path, html) for site, path, html in load_pages(CORPORA / "docs-dev", None)]
    distinct = []
    for index, (site, path, html) in enumerate(docs):
        text = extract_markdown(html, SITE_ROOT.format(site=site) + path).markdown
        distinct.append(facts(f"d{index}", text, index))
    return recall, len(find_duplicates(distinct)), len(docs)


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
                print(
                    f"        write {seconds:.2f} s (target <= {WRITE_TARGET_S} s); {seconds / RUN_WALL_S:.1%} of a 1,000-page run's ~{RUN_WALL_S:g} s (target <= {RUN_SHARE_TARGET:.0%})"  # noqa: E501
                )
    if len(peaks) > 1:
        print(f"export peak memory from the smallest to the largest: {peaks[0]:.0f} -> {peaks[-1]:.0f} MiB (target: flat)")
    recall, flagged, docs = duplicate_figures()
    print(f"duplicates: {recall:.1%} of the known pairs found (target >= 95%); {flagged} of {docs} distinct docs-dev pages flagged (target 0)")
    print(f"this process peaked at {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MiB")


if __name__ == "__main__":
    main()
