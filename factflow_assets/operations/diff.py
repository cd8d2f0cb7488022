"""`execution diff A B`: which pages were added, removed, changed or left as they were between two
executions of one pipeline, by URL and content hash; what an indexer reads after a re-crawl."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

from resources.database import FactflowDatabase
from resources.errors import FactflowError
from resources.executions_store import ExecutionRecord
from resources.statuses import WITH_OUTPUTS

from ..engine.executions import frozen_pipeline

CHANGES = ("changed", "added", "removed", "unchanged")


@dataclass(frozen=True)
class PageChange:
    url: str
    message_id: str
    before: str | None  # content hash in A (None: not there)
    after: str | None  # content hash in B


@dataclass
class Diff:
    source: str
    target: str
    changes: dict[str, list[PageChange]] = field(default_factory=dict)

    def to_dict(self, only: tuple[str, ...] = CHANGES) -> dict:
        return {
            "from": self.source,
            "to": self.target,
            "counts": {change: len(self.changes[change]) for change in CHANGES},
            **{change: [asdict(page) for page in self.changes[change]] for change in CHANGES if change in only},
        }


def pages_of(db: FactflowDatabase, record: ExecutionRecord) -> dict[str, tuple[str, str]]:
    """{url: (message id, content hash)} of every page the execution fetched (its page-fetching
    stages' current rows that stored something; a carried-over page counts as fetched)."""
    pipeline = frozen_pipeline(db, record.config_hash, record.pipeline)
    stages = [(s.route.name, s.name) for s in pipeline.stages if s.adapter_class.fetches_pages]
    found = {}
    for row in db.lineage_queries.current_outputs(record.id, stages, WITH_OUTPUTS):
        url = (row["metadata"] or {}).get("url")
        if url:
            found[url] = (row["message_id"], row["output_hash"])
    return found


def diff_executions(db: FactflowDatabase, source: str, target: str) -> Diff:
    a, b = db.executions.resolve(source), db.executions.resolve(target)
    if a.pipeline != b.pipeline:
        raise FactflowError(f"execution {a.id} is of pipeline {a.pipeline} and {b.id} of {b.pipeline}: diff compares executions of one pipeline")
    before, after = pages_of(db, a), pages_of(db, b)
    diff = Diff(a.id, b.id, {change: [] for change in CHANGES})
    for url in sorted(before.keys() | after.keys()):
        old, new = before.get(url), after.get(url)
        if old is None:
            change = "added"
        elif new is None:
            change = "removed"
        else:
            change = "unchanged" if old[1] == new[1] else "changed"
        either = new or old
        assert either is not None  # the URL came from one of the two
        diff.changes[change].append(PageChange(url, either[0], old[1] if old else None, new[1] if new else None))
    return diff
