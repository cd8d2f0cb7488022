"""`factflow ui`: the Dagster webserver and daemon for this workspace, on loopback.

Runs `dagster dev` on the project's workspace with factflow's DAGSTER_HOME, FACTFLOW_HOME and
pipelines directory, so the UI, the daemon (schedules, the run queue of `--detach`) and the CLI
share one instance. `dagster dev` started from a script inherits ignored signals and then cannot
be stopped (DAGSTER-NOTES), so it starts in its own session with SIGINT and SIGTERM at their
defaults; Ctrl+C or SIGTERM to factflow is passed on as SIGTERM, which stops the webserver, the
daemon and the code servers together; whatever is left after a grace period is killed.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import click

from .environment import Environment, pass_environment
from .output import note

STOP_GRACE = 30.0
READY_TIMEOUT = 120.0


def dagster_dev_command(settings, host: str, port: int, log_level: str) -> list[str]:
    from factflow_assets.operations.instance import workspace_file

    local = Path(sys.executable).with_name("dagster")
    executable = str(local) if local.exists() else shutil.which("dagster") or "dagster"
    return [executable, "dev", "-w", str(workspace_file(settings)), "-h", host, "-p", str(port), "--log-level", log_level]


def ui_environment(settings) -> dict[str, str]:
    """The process environment with every factflow location spelled out, so the code servers the
    webserver starts load the same pipelines and reach the same database and storage."""
    from factflow_assets.operations.instance import ensure_dagster_home

    ensure_dagster_home(settings)
    env = os.environ.copy()
    env.update(
        FACTFLOW_HOME=str(settings.home),
        FACTFLOW_PIPELINES_DIR=str(settings.pipelines_dir),
        FACTFLOW_DATABASE_URL=settings.database_url,
        FACTFLOW_STORAGE_URI=settings.storage_uri,
        DAGSTER_HOME=str(settings.dagster_home),
    )
    # `dagster dev` warns at start that `dg dev` supersedes it; both run the same services.
    env.setdefault("PYTHONWARNINGS", "ignore::FutureWarning")
    if settings.s3_endpoint_url:
        env["FACTFLOW_S3_ENDPOINT_URL"] = settings.s3_endpoint_url
    return env


def require_free_port(host: str, port: int) -> None:
    with socket.socket() as probe:
        try:
            probe.bind((host, port))
        except OSError as error:
            raise click.ClickException(f"cannot serve on {host}:{port}: {error.strerror}") from None


def _default_signals() -> None:
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)


def answers(url: str) -> bool:
    import httpx

    try:
        return httpx.get(f"{url}/server_info", timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


def serve(settings, host: str, port: int, log_level: str) -> None:
    """Run the UI until a signal asks it to stop; a ClickException if it exits by itself."""
    require_free_port(host, port)
    stop = threading.Event()
    previous = {sig: signal.signal(sig, lambda *_: stop.set()) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        server = subprocess.Popen(
            dagster_dev_command(settings, host, port, log_level),
            env=ui_environment(settings),  # writes the workspace file too
            # Not the project folder: `dagster dev` warns about a dagster.yaml there that it ignores.
            cwd=settings.home,
            stdout=sys.stderr,  # its log; factflow's stdout says only where the UI is
            start_new_session=True,
            preexec_fn=_default_signals,
        )
        url = f"http://{host}:{port}"
        ready_by = time.monotonic() + READY_TIMEOUT
        announced = False
        while not stop.wait(0.5):
            if server.poll() is not None:
                raise click.ClickException(f"the Dagster webserver exited with code {server.returncode}")
            if not announced and answers(url):
                click.echo(url)
                note(f"Dagster UI for {settings.pipelines_dir} at {url}; Ctrl+C stops it")
                announced = True
            elif not announced and time.monotonic() > ready_by:
                stop.set()
                note(f"the Dagster webserver did not answer within {READY_TIMEOUT:g} s; stopping it")
        _stop(server)
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def _stop(server: subprocess.Popen) -> None:
    """SIGTERM to `dagster dev` (it stops its webserver, daemon and code servers), then SIGKILL to
    whatever of its session is left after the grace period."""
    if server.poll() is None:
        server.send_signal(signal.SIGTERM)
        try:
            server.wait(timeout=STOP_GRACE)
        except subprocess.TimeoutExpired:
            note(f"the Dagster webserver did not stop within {STOP_GRACE:g} s; killing it")
    try:
        os.killpg(server.pid, signal.SIGKILL)  # its session's leftovers, if any
    except ProcessLookupError:
        pass
    server.wait()


@click.command("ui")
@click.option("--host", default="127.0.0.1", show_default=True, help="Interface to serve on (loopback unless you mean it).")
@click.option("--port", default=3000, show_default=True, type=click.IntRange(1, 65535))
@click.option("--log-level", default="warning", show_default=True, type=click.Choice(["critical", "error", "warning", "info", "debug"]),
              help="How much the webserver and daemon log.")
@pass_environment
def ui(env: Environment, host: str, port: int, log_level: str) -> None:
    """Serve the Dagster UI (webserver and daemon) for the pipelines directory.

    The asset graph of each pipeline grouped by route, executions as partitions, each stage's
    materialisations and checks, schedules, and the queue that `execution start --detach` uses.
    Ctrl+C or SIGTERM stops it.
    """
    serve(env.settings, host, port, log_level)
