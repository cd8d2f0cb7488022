"""`factflow storage list|browse|get|metadata|watch|download`: the objects executions stored."""

from __future__ import annotations

import base64
import sys
import time

import click

from resources.errors import NotFoundError
from resources.storage import ObjectInfo

from .environment import Environment, pass_environment
from .lookup import stage_prefixes
from .output import format_size, format_time, line, make_table, note, output_option, print_json, stdout

#: Content types whose bytes `storage get --output json` shows as text.
TEXT_TYPES = ("text/", "application/json", "application/xml", "application/xhtml+xml")


@click.group()
def storage() -> None:
    """Objects and sidecars in factflow storage."""


def object_dict(info) -> dict:
    return {"key": info.key, "size": info.size, "modified": info.modified}


@storage.command("list")
@click.option("--execution", "-e", "execution", required=True, help="Execution id or tag.")
@click.option("--route", help="Only this route.")
@click.option("--stage", help="Only this stage.")
@click.option("--limit", default=1000, show_default=True, type=click.IntRange(1, 10_000_000))
@output_option
@pass_environment
def list_command(env: Environment, execution: str, route: str | None, stage: str | None, limit: int, output: str) -> None:
    """Objects an execution stored, by key, with size and time written."""
    record = env.db.executions.resolve(execution)
    objects: list[ObjectInfo] = []
    for prefix in stage_prefixes(env, record, route, stage):
        objects.extend(env.store.objects(prefix, limit=limit + 1 - len(objects)))
        if len(objects) > limit:
            break
    truncated = len(objects) > limit
    objects = objects[:limit]
    if output == "json":
        print_json([object_dict(o) for o in objects])
    else:
        stdout().print(make_table(("KEY", "SIZE", "WRITTEN"), [(o.key, format_size(o.size), format_time(o.modified)) for o in objects]))
    if truncated:
        note(f"showing the first {limit} objects; --limit shows more")


@storage.command("browse")
@click.argument("prefix", default="")
@output_option
@pass_environment
def browse_command(env: Environment, prefix: str, output: str) -> None:
    """One level of storage under PREFIX: folders with their object counts, then objects."""
    folders, files = env.store.browse(prefix)
    if prefix and not folders and not files:
        raise NotFoundError(f"nothing is stored under {prefix}")
    if output == "json":
        print_json(
            {
                "prefix": prefix,
                "folders": [{"prefix": f.prefix, "objects": f.objects, "size": f.size} for f in folders],
                "objects": [object_dict(o) for o in files],
            }
        )
        return
    rows = [(f.prefix, f.objects, format_size(f.size), "") for f in folders]
    rows += [(o.key, "", format_size(o.size), format_time(o.modified)) for o in files]
    stdout().print(make_table(("NAME", "OBJECTS", "SIZE", "WRITTEN"), rows))


@storage.command("get")
@click.argument("key")
@click.option("--output", "-o", type=click.Choice(["raw", "json"]), default="raw", show_default=True,
              help="The bytes as stored, or JSON with the content (text when it is text) and its metadata.")
@pass_environment
def get_command(env: Environment, key: str, output: str) -> None:
    """An object's content: its bytes on stdout (redirect to a file), or JSON with its sidecar."""
    metadata = env.store.metadata(key)
    body = env.store.get(key)
    if output == "raw":
        sys.stdout.flush()
        sys.stdout.buffer.write(body)
        sys.stdout.buffer.flush()
        return
    print_json({"key": key, "metadata": metadata, **content_fields(body, metadata.get("content_type", ""))})


def content_fields(body: bytes, content_type: str) -> dict:
    """The content as text when its type says text and it decodes, else as base64."""
    media_type, _, params = content_type.partition(";")
    charset = "utf-8"
    for param in params.split(";"):
        name, _, value = param.strip().partition("=")
        if name.lower() == "charset" and value:
            charset = value.strip('"')
    if media_type.strip().lower().startswith(TEXT_TYPES):
        try:
            return {"encoding": "text", "content": body.decode(charset)}
        except (LookupError, UnicodeDecodeError):
            pass
    return {"encoding": "base64", "content": base64.b64encode(body).decode("ascii")}


@storage.command("metadata")
@click.argument("key")
@output_option
@pass_environment
def metadata_command(env: Environment, key: str, output: str) -> None:
    """An object's sidecar: engine fields and adapter extras."""
    metadata = env.store.metadata(key)
    if output == "json":
        print_json(metadata)
    else:
        stdout().print(make_table(("FIELD", "VALUE"), sorted(metadata.items())))


@storage.command("watch")
@click.option("--execution", "-e", "execution", required=True, help="Execution id or tag.")
@click.option("--route", help="Only this route.")
@click.option("--interval", default=1.0, show_default=True, type=click.FloatRange(0.05, 60), help="Seconds between looks.")
@output_option
@pass_environment
def watch_command(env: Environment, execution: str, route: str | None, interval: float, output: str) -> None:
    """Print each object as the execution writes it; ends with the execution (or Ctrl+C).

    With --output json, one JSON object per line.
    """
    from factflow_assets.operations.status import refresh_status

    record = env.db.executions.resolve(execution)
    (prefix,) = stage_prefixes(env, record, route)

    def finished() -> bool:
        current = env.db.executions.get(record.id)
        if current is None:  # deleted meanwhile (execution delete, a prune)
            return True
        return not refresh_status(env.db, env.instance, current).active

    console = stdout()
    count = 0
    for info in env.store.watch(prefix, finished, interval):
        count += 1
        if output == "json":
            print_json(object_dict(info), indent=None)
        else:
            console.print(line(f"{format_time(info.modified)}  {format_size(info.size):>9}  {info.key}"))
        sys.stdout.flush()  # each line as it comes, also into a pipe
    final = env.db.executions.get(record.id)
    if final is None:
        raise click.ClickException(f"{count} objects; execution {record.id} was deleted while it was watched")
    note(f"{count} objects; execution {final.id} {final.status}")


@storage.command("download")
@click.argument("execution")
@click.option("--output-dir", "-d", required=True, type=click.Path(file_okay=False, writable=True), help="Folder to write into.")
@output_option
@pass_environment
def download_command(env: Environment, execution: str, output_dir: str, output: str) -> None:
    """Everything EXECUTION stored, sidecars included, keys kept as folders under OUTPUT_DIR."""
    from resources.storage import execution_prefix

    from .progress import transfer_progress

    record = env.db.executions.resolve(execution)
    started = time.perf_counter()
    with transfer_progress(f"downloading {record.id}", enabled=output != "json") as callback:
        objects, size = env.store.download(execution_prefix(record.id), output_dir, callback)
    elapsed = time.perf_counter() - started
    if output == "json":
        print_json({"execution_id": record.id, "objects": objects, "sidecars": objects, "bytes": size, "output_dir": output_dir})
    else:
        stdout().print(line(f"{objects} objects and their sidecars, {format_size(size)}, written to {output_dir} in {elapsed:.1f}s"))
