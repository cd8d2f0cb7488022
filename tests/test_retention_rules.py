"""Which executions a prune chooses: the newest N stay, only those older than the age go, never an
active one, and never a parent a kept child still reads (even through a chain)."""

from datetime import timedelta

import pytest
from conftest import TINY_PIPELINE
from sqlalchemy import update

from factflow_assets.assets.retention import parse_age, select_for_prune, spare_parents_of_kept
from factflow_assets.config import validate_text
from factflow_assets.engine.executions import create_execution
from resources.clock import utcnow
from resources.database import FactflowDatabase
from resources.db_schema import executions
from resources.errors import FactflowError


@pytest.fixture
def db(tmp_path):
    return FactflowDatabase(f"sqlite:///{tmp_path / 'factflow.db'}")


def made(db, days_old: float, status: str = "completed", parent=None) -> str:
    pipeline = validate_text(TINY_PIPELINE, "tiny").pipeline
    record = create_execution(db, pipeline, status=status, parent_id=parent, init_payload={"urls": []} if parent else None)
    with db.engine.begin() as conn:
        conn.execute(update(executions).where(executions.c.id == record.id).values(created_at=utcnow() - timedelta(days=days_old)))
    return record.id


def ids(records) -> list[str]:
    return [record.id for record in records]


def test_ages_are_a_number_and_a_unit():
    assert parse_age("30d") == timedelta(days=30) and parse_age("12h") == timedelta(hours=12) and parse_age(" 2w ") == timedelta(weeks=2)
    for bad in ("30", "d", "1.5d", "-3d", "30 days", ""):
        with pytest.raises(FactflowError, match="is not an age"):
            parse_age(bad)


def test_keep_counts_from_the_newest_and_the_age_applies_to_the_rest(db):
    oldest, old, recent, newest = made(db, 40), made(db, 31), made(db, 2), made(db, 0)
    assert ids(select_for_prune(db, "tiny", 2, None, ())) == [old, oldest]
    assert ids(select_for_prune(db, "tiny", None, timedelta(days=30), ())) == [old, oldest]
    assert ids(select_for_prune(db, "tiny", 3, timedelta(days=1), ())) == [oldest]
    assert ids(select_for_prune(db, "tiny", 0, timedelta(days=35), ())) == [oldest]
    assert ids(select_for_prune(db, "other", 0, None, ())) == []
    assert recent and newest
    with pytest.raises(FactflowError, match="say what to keep"):
        select_for_prune(db, "tiny", None, None, ())


def test_active_executions_are_never_chosen_and_statuses_filter(db):
    running, failed, done = made(db, 9, "running"), made(db, 8, "failed"), made(db, 7, "completed")
    assert ids(select_for_prune(db, None, 0, None, ())) == [done, failed]
    assert ids(select_for_prune(db, None, 0, None, ("failed",))) == [failed]
    assert running


def test_a_kept_child_spares_its_parent_and_grandparent(db):
    grandparent = made(db, 10)
    parent = made(db, 9, parent=grandparent)
    child = made(db, 8, parent=parent)
    lone = made(db, 7)
    chosen = [r for r in db.executions.recent(limit=100) if r.id in (grandparent, parent, lone)]  # the child is kept
    left, spared = spare_parents_of_kept(db, chosen)
    assert ids(left) == [lone] and sorted(ids(spared)) == sorted([parent, grandparent])
    everything = db.executions.recent(limit=100)
    assert spare_parents_of_kept(db, everything) == (everything, [])
    assert child
