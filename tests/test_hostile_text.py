"""Text from a website, a tag or a payload is data: no console markup, no terminal escapes.

A page can put anything in its URL, its <title> or its error: `[/b]` (which rich would read as
markup and fail on), `[link=…]` (a clickable link), ESC sequences (colours, clearing the screen, a
window title). Every table and line shows them written out; JSON keeps them exact.
"""

import json

from click.testing import CliRunner

from cli.main import cli
from factflow_assets.config import validate_text
from factflow_assets.engine.executions import create_execution
from factflow_assets.settings import Settings
from resources.clock import utcnow
from resources.database import FactflowDatabase
from resources.storage import ObjectStore
from tests.conftest import TINY_PIPELINE
from tests.test_database import lineage_row

HOSTILE = "[/b] [link=http://evil.example/]click[/link] \x1b[31mred\x1b[0m \x1b]0;pwned\x07 \x1b[2J \x9b1m report\u202egpj.exe \u2066x\u2069"


def run(*args):
    result = CliRunner().invoke(cli, list(args))
    assert result.exception is None or isinstance(result.exception, SystemExit), result.output
    return result


def assert_shown_as_data(text: str) -> None:
    assert "\x1b" not in text and "\x07" not in text and "\x9b" not in text  # nothing for the terminal to act on
    assert "[/b] [link=http://evil.example/]click[/link]" in text  # the brackets as they are
    assert "\\x1b[31mred" in text and "\\x1b]0;pwned\\x07" in text  # the escapes written out
    assert "\u202e" not in text and "\u2066" not in text and "report\\u202egpj.exe \\u2066x\\u2069" in text  # no reordering


def test_tables_and_lines_show_hostile_text_as_data_and_json_keeps_it_exact(factflow_home):
    settings = Settings.from_env()
    db = FactflowDatabase(settings.database_url)
    record = create_execution(db, validate_text(TINY_PIPELINE, "tiny").pipeline, tag="[/i]x\x1b[2J")
    db.executions.set_status(record.id, "failed", error=f"HTTP 404 for http://site/{HOSTILE}")
    writer = db.lineage.writer()
    writer.start(lineage_row(
        "hostile-row", "m-1", execution_id=record.id, status="failed", error_class="HttpStatusError",
        error_message=f"HTTP 404 Not Found for http://site/{HOSTILE}", error_traceback=f"Traceback\n  {HOSTILE}\n",
        finished_at=utcnow(), metadata={"url": f"http://site/{HOSTILE}", "title": HOSTILE},
    ))
    writer.close()
    store = ObjectStore(settings.storage_uri)
    key = f"executions/{record.id}/r/url_expander/m-1"
    store.put(key, b"{}", "application/json", {"title": HOSTILE, "message_id": "m-1"})

    listed = run("execution", "list")
    assert listed.exit_code == 0 and "[/i]x\\x1b[2J" in listed.stdout and "\x1b" not in listed.stdout
    for args in (
        ("lineage", "failures"), ("lineage", "failures", "--execution", record.id), ("lineage", "list", "--execution", record.id),
        ("lineage", "get", "hostile-row"), ("lineage", "chain", "hostile-row"), ("execution", "get", record.id),
        ("storage", "metadata", key),
    ):
        shown = run(*args)
        assert shown.exit_code == 0, (args, shown.output)
        assert_shown_as_data(shown.stdout)

    exact = json.loads(run("lineage", "get", "hostile-row", "--output", "json").stdout)
    assert exact["metadata"]["title"] == HOSTILE and exact["error_message"].endswith(HOSTILE)
    assert json.loads(run("storage", "metadata", key, "--output", "json").stdout)["title"] == HOSTILE
