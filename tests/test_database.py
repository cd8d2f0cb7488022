"""The factflow database on SQLite and PostgreSQL: executions, frozen configs, batched lineage."""

import threading
from datetime import timedelta

import pytest
from sqlalchemy import event, select

from factflow_assets.config import validate_text
from factflow_assets.engine.executions import create_execution, frozen_pipeline
from resources.clock import utcnow
from resources.database import FactflowDatabase
from resources.db_schema import lineage
from resources.errors import FactflowError, NotFoundError
from tests.conftest import executions_exist
from tests.test_config_validation import VALID


@pytest.fixture
def db(database_url):
    database = FactflowDatabase(database_url)
    executions_exist(database, "e1")
    return database


@pytest.fixture
def pipeline():
    return validate_text(VALID, "demo").pipeline


def lineage_row(row_id, message_id="m1", attempt=1, **overrides):
    row = {
        "id": row_id, "execution_id": "e1", "route": "scrape", "stage": "url_expander",
        "adapter_type": "url_expander", "message_id": message_id, "parent_lineage_id": None,
        "batch_id": "b1", "status": "pending", "input_hash": "in", "output_hash": None,
        "output_keys": [], "error_class": None, "error_message": None, "error_traceback": None,
        "started_at": utcnow(), "finished_at": None, "duration_ms": None, "dagster_run_id": "run",
        "attempt": attempt, "config_hash": "cfg", "superseded": False, "metadata": {},
    }
    row.update(overrides)
    return row


def test_executions_keep_a_frozen_config_and_resolve_by_id_or_tag(db, pipeline):
    record = create_execution(db, pipeline, overrides={"sitemap_url": "http://x/s.xml"}, tag="nightly")
    assert db.executions.resolve(record.id).id == record.id
    assert db.executions.resolve("nightly").id == record.id
    assert record.init_payload == {"sitemap_url": "http://x/s.xml"}
    frozen = frozen_pipeline(db, record.config_hash)
    assert frozen.text == pipeline.text and [s.name for s in frozen.stages] == [s.name for s in pipeline.stages]
    with pytest.raises(NotFoundError, match="no execution"):
        db.executions.resolve("missing")
    with pytest.raises(FactflowError, match="already names execution"):
        create_execution(db, pipeline, tag="nightly")


def test_status_transitions_stamp_start_and_end(db, pipeline):
    record = create_execution(db, pipeline)
    assert record.status == "queued" and record.started_at is None
    db.executions.set_status(record.id, "running", run_id="r1")
    running = db.executions.get(record.id)
    assert running.started_at is not None and running.finished_at is None and running.dagster_run_id == "r1"
    db.executions.set_status(record.id, "failed", error="boom")
    failed = db.executions.get(record.id)
    assert failed.finished_at >= failed.started_at and failed.error == "boom"
    assert [r.id for r in db.executions.recent(status="failed")] == [record.id]


def test_list_is_newest_first(db, pipeline):
    ids = [create_execution(db, pipeline).id for _ in range(3)]
    assert [r.id for r in db.executions.recent() if r.id in ids] == sorted(ids, reverse=True)
    assert len(db.executions.recent(limit=2)) == 2


def count_statements(engine):
    seen = []

    def before(conn, cursor, statement, parameters, context, executemany):
        if statement.lstrip().upper().startswith(("INSERT", "UPDATE")):
            seen.append((statement.split()[0].upper(), executemany))

    event.listen(engine, "before_cursor_execute", before)
    return seen


def test_the_lineage_writer_batches_and_merges_start_with_finish(db):
    writer = db.lineage.writer(flush_interval=3600)  # flush only when asked
    statements = count_statements(db.engine)
    for i in range(50):
        writer.start(lineage_row(f"row{i}", message_id=f"m{i}"))
    for i in range(50):
        writer.finish(f"row{i}", status="completed", finished_at=utcnow(), duration_ms=1.0, output_keys=[f"k{i}"])
    writer.flush()
    assert [s[0] for s in statements] == ["INSERT"]  # one batched insert, already finished
    writer.start(lineage_row("late", message_id="late"))
    writer.flush()
    writer.finish("late", status="failed", error_class="ValueError", error_message="bad", finished_at=utcnow())
    writer.close()
    assert [s[0] for s in statements] == ["INSERT", "INSERT", "UPDATE"]
    with db.engine.connect() as conn:
        rows = {r.id: r for r in conn.execute(select(lineage))}
    assert len(rows) == 51
    assert rows["row7"].status == "completed" and rows["row7"].output_keys == ["k7"]
    assert rows["late"].status == "failed" and rows["late"].error_message == "bad"


def test_the_writer_flushes_by_itself_in_the_background(db):
    writer = db.lineage.writer(flush_interval=0.05)
    writer.start(lineage_row("r1"))
    done = threading.Event()
    for _ in range(100):
        if db.lineage.stage_counts("e1"):
            done.set()
            break
        threading.Event().wait(0.05)
    writer.close()
    assert done.is_set()


def test_prior_invocations_are_the_latest_attempt_per_message_and_ignore_superseded(db):
    writer = db.lineage.writer()
    writer.start(lineage_row("a1", "m1", attempt=1, status="failed"))
    writer.start(lineage_row("a2", "m1", attempt=2, status="completed", output_keys=["k"]))
    writer.start(lineage_row("b1", "m2", attempt=1, status="completed", superseded=True))
    writer.close()
    prior = db.lineage.prior_invocations("e1", "scrape", "url_expander")
    assert set(prior) == {"m1"}
    assert prior["m1"].lineage_id == "a2" and prior["m1"].status == "completed" and prior["m1"].output_keys == ["k"]


def test_stage_counts_and_failures(db):
    writer = db.lineage.writer()
    writer.start(lineage_row("a", "m1", status="completed"))
    writer.start(lineage_row("b", "m2", status="failed", error_class="HttpStatusError", error_message="HTTP 404", metadata={"url": "http://x/"}))
    writer.start(lineage_row("c", "m3", started_at=utcnow() + timedelta(seconds=1)))
    writer.close()
    counts = {row["status"]: row["count"] for row in db.lineage.stage_counts("e1")}
    assert counts == {"completed": 1, "failed": 1, "pending": 1}
    (failure,) = db.lineage_queries.failures("e1")
    assert failure["message_id"] == "m2" and failure["metadata"]["url"] == "http://x/"


def test_a_new_database_is_made_at_the_newest_revision_and_opening_it_again_changes_nothing(database_url):
    from alembic.config import Config
    from alembic.script import ScriptDirectory

    from resources.database import dispose_engines
    from resources.migrate import HEAD, revision_of, upgrade

    config = Config()
    config.set_main_option("script_location", "resources:migrations")
    assert ScriptDirectory.from_config(config).get_current_head() == HEAD  # the constant follows the scripts
    engine = FactflowDatabase(database_url).engine
    assert revision_of(engine) == HEAD
    assert upgrade(engine) == (HEAD, HEAD)
    dispose_engines()
    FactflowDatabase(database_url)


def test_a_database_made_before_migrations_is_brought_to_the_newest_revision_with_its_rows(database_url):
    """What factflow made before its schema was versioned: no version table, the lineage table
    without the columns added later, an index missing, rows in it. Opened now: adopted, upgraded."""
    from importlib import import_module

    from sqlalchemy import create_engine, inspect, text

    from resources.database import dispose_engines
    from resources.migrate import HEAD, revision_of

    baseline = import_module("resources.migrations.versions.0001_baseline")
    old = create_engine(database_url)
    baseline.metadata.create_all(old)
    with old.begin() as conn:
        for column in ("output_count", "output_bytes"):
            conn.execute(text(f"ALTER TABLE factflow_lineage DROP COLUMN {column}"))
        conn.execute(text("DROP INDEX ix_factflow_lineage_exec_status_started"))
        for statement in OLDER_VERSION_ROWS:
            conn.execute(text(statement))
    old.dispose()

    db = FactflowDatabase(database_url)
    inspector = inspect(db.engine)
    assert revision_of(db.engine) == HEAD
    assert {"output_count", "output_bytes"} <= {c["name"] for c in inspector.get_columns("factflow_lineage")}
    assert "ix_factflow_lineage_exec_status_started" in {i["name"] for i in inspector.get_indexes("factflow_lineage")}
    assert {fk["name"] for fk in inspector.get_foreign_keys("factflow_lineage")} == {"fk_factflow_lineage_execution", "fk_factflow_lineage_parent"}
    assert db.lineage.stage_counts("e-old") == [{"route": "r", "stage": "s", "status": "completed", "count": 1}]
    assert db.executions.get("e-old").pipeline == "old"
    dispose_engines()


OLDER_VERSION_ROWS = (
    "INSERT INTO factflow_configs (config_hash, pipeline, yaml, created_at) VALUES ('h', 'old', 'version: 1', '2026-01-01 00:00:00')",
    "INSERT INTO factflow_executions (id, pipeline, status, config_hash, init_route, init_payload, overrides, origin, created_at) "
    "VALUES ('e-old', 'old', 'completed', 'h', 'r', '{}', '{}', '{}', '2026-01-01 00:00:00')",
    "INSERT INTO factflow_lineage (id, execution_id, route, stage, adapter_type, message_id, batch_id, status, "
    "output_keys, started_at, attempt, config_hash, superseded, metadata) VALUES ('l-old', 'e-old', 'r', 's', 'a', "
    "'m', 'b', 'completed', '[]', '2026-01-01 00:00:00', 1, 'h', false, '{}')",
)


def test_a_row_naming_an_execution_that_does_not_exist_is_refused(db):
    from sqlalchemy import insert
    from sqlalchemy.exc import IntegrityError

    with pytest.raises(IntegrityError):
        with db.engine.begin() as conn:
            conn.execute(insert(lineage), [lineage_row("orphan", execution_id="no-such-execution")])


def test_a_database_that_stays_away_is_a_clear_error_and_the_rows_wait_for_it(db, monkeypatch):
    """After its retries the writer says the lineage could not be written (one line, the
    database's reason) and keeps the rows: the next flush that reaches the database writes them."""
    from sqlalchemy.exc import OperationalError

    from resources.errors import FactflowError
    from resources.lineage_store import LineageWriter

    real_write = LineageWriter._write
    monkeypatch.setattr("resources.lineage_store.time.sleep", lambda seconds: None)
    monkeypatch.setattr(LineageWriter, "_write", lambda *args: (_ for _ in ()).throw(OperationalError("INSERT", {}, Exception("server closed the connection"))))
    writer = db.lineage.writer(flush_interval=3600)
    writer.start(lineage_row("kept", message_id="m"))
    with pytest.raises(FactflowError, match="lineage could not be written: .*server closed the connection"):
        writer.flush()
    monkeypatch.setattr(LineageWriter, "_write", real_write)
    writer.close()
    with db.engine.connect() as conn:
        assert [r.id for r in conn.execute(select(lineage))] == ["kept"]


def test_an_interrupt_while_the_pool_closes_a_connection_prints_no_traceback_but_a_real_error_does(caplog):
    """Ctrl+C can land inside SQLAlchemy's close of a pooled connection: it logs the interrupt with
    its traceback, then raises it again. The operator sees the one line the run says instead."""
    import logging

    import resources.database  # noqa: F401 (installs the filter)

    pool_log = logging.getLogger("sqlalchemy.pool.impl.QueuePool")
    with caplog.at_level(logging.ERROR, logger="sqlalchemy.pool.impl.QueuePool"):
        for error in (KeyboardInterrupt(), OSError("the server went away")):
            try:
                raise error
            except BaseException:
                pool_log.error("Exception closing connection %r", "conn", exc_info=True)
    assert [type(r.exc_info[1]) for r in caplog.records] == [OSError]


def test_rows_survive_a_flush_that_fails_on_checkout_and_are_written_by_the_next(db, monkeypatch):
    """When every reconnection on checkout fails (a database dropping connections again and again),
    SQLAlchemy raises "This connection is closed", not a DBAPIError: the batch taken for that flush
    was lost, and the next row naming one of its rows as parent was refused (a foreign key)."""
    from sqlalchemy.exc import InvalidRequestError

    from resources.lineage_store import LineageWriter
    from resources.outage import is_outage

    assert is_outage(InvalidRequestError("This connection is closed"))
    real_write = LineageWriter._write
    monkeypatch.setattr(LineageWriter, "_write", lambda *args: (_ for _ in ()).throw(InvalidRequestError("This connection is closed")))
    writer = db.lineage.writer(flush_interval=3600)
    writer.start(lineage_row("parent", message_id="m"))
    writer.commit_now()  # the database is away: kept, not lost
    assert not writer.gave_up
    monkeypatch.setattr(LineageWriter, "_write", real_write)
    writer.start(lineage_row("child", message_id="m2", parent_lineage_id="parent"))
    writer.close()
    with db.engine.connect() as conn:
        assert sorted(r.id for r in conn.execute(select(lineage))) == ["child", "parent"]


def test_a_flush_that_fails_for_another_reason_keeps_its_rows_and_says_why(db, monkeypatch):
    from resources.lineage_store import LineageWriter

    real_write = LineageWriter._write
    monkeypatch.setattr(LineageWriter, "_write", lambda *args: (_ for _ in ()).throw(RuntimeError("a bug")))
    writer = db.lineage.writer(flush_interval=3600)
    writer.start(lineage_row("kept", message_id="m"))
    with pytest.raises(RuntimeError, match="a bug"):
        writer.commit_now()
    assert writer.gave_up
    monkeypatch.setattr(LineageWriter, "_write", real_write)
    writer.close()
    with db.engine.connect() as conn:
        assert [r.id for r in conn.execute(select(lineage))] == ["kept"]
