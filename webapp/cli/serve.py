"""``taskstore serve``: granian (or gunicorn) in front of the app, and the demo mode that needs nothing
configured."""

from __future__ import annotations

import errno
import logging
import secrets
import socket
from pathlib import Path

import click
from flask import Flask

from .. import serving
from ..extensions import db
from ..transactions import committed

log = logging.getLogger(__name__)


def _demo_overrides(instance_path: Path) -> dict:
    """Demo mode: a SQLite file and a generated secret key in the instance folder, so
    nothing has to be configured and restarts keep the data and the tokens valid."""
    instance_path.mkdir(mode=0o700, parents=True, exist_ok=True)
    secret_file = instance_path / "demo-secret-key"
    if not secret_file.exists():
        secret_file.write_text(secrets.token_urlsafe(48))
        secret_file.chmod(0o600)
    return {
        "database_url": "sqlite:///" + str(instance_path / "taskstore-demo.db"),
        "secret_key": secret_file.read_text().strip(),
    }


def _check_port(host: str, port: int) -> None:
    """Refuse a port another process listens on before printing anything (the servers would only
    say so after their banner, gunicorn after retrying for seconds)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as gunicorn: TIME_WAIT is no obstacle
        try:
            probe.bind((host, port))
        except OSError as error:
            reason = "is taken" if error.errno == errno.EADDRINUSE else f"cannot be used ({error.strerror})"
            raise click.ClickException(f"port {port} on {host} {reason}: stop what listens there or choose "
                                       "another with --port") from None


def _prepare_demo(app: Flask, instance_path: Path, base_url: str, *, verbose: bool = False) -> None:
    from flask_migrate import upgrade

    from .. import demo, runs
    from ..auth import api_keys

    root = logging.getLogger()
    configured = (root.level, list(root.handlers))
    with app.app_context():
        if not verbose:
            logging.disable(logging.INFO)  # the migrations' INFO lines, one per step: noise in a demo
        try:
            upgrade()
        finally:
            logging.disable(logging.NOTSET)
        # Alembic's logging configuration gave the root logger a handler of its own: the app's
        # records would reach stderr twice.
        root.setLevel(configured[0])
        root.handlers[:] = configured[1]
        if not runs.dag_summaries(limit=1, offset=0).total:
            committed(demo.load)
        key_file = instance_path / "demo-api-key"
        if not key_file.exists():
            _record, key = committed(lambda: api_keys.create("demo", "admin"))
            key_file.write_text(key)
            key_file.chmod(0o600)
        key = key_file.read_text().strip()
        username, password = committed(lambda: _demo_admin_user(instance_path))
        db.session.remove()
        db.engine.dispose()
    click.echo(f"Task Store demo on {base_url}/ (SQLite: {instance_path / 'taskstore-demo.db'})")
    click.echo(f"Admin API key: {key}")
    click.echo(f"Admin UI login: user {username!r}, password {password}")
    click.echo(f"Try: curl -H 'Authorization: Bearer {key}' {base_url}/api/v2/dags")
    click.echo("Point other taskstore commands (in another terminal) at this demo with:")
    click.echo(f"  export TASKSTORE_DATABASE_URL=sqlite:///{instance_path / 'taskstore-demo.db'}")
    click.echo(f'  export TASKSTORE_SECRET_KEY="$(cat {instance_path / "demo-secret-key"})"')


def _demo_admin_user(instance_path: Path) -> tuple[str, str]:
    """The demo's UI login: "admin" with a random password kept in the instance folder, so
    it survives restarts; the user is (re)made to match the file if either was removed."""
    from ..auth import users

    password_file = instance_path / "demo-admin-password"
    if not password_file.exists():
        password_file.write_text(secrets.token_urlsafe(12))
        password_file.chmod(0o600)
    password = password_file.read_text().strip()
    user = users.get_by_username("admin")
    if user is None:
        users.create("admin", password, "admin")
    elif not users.check_password(user, password):
        users.set_password(user, password, actor="demo")
        users.set_role(user, "admin", actor="demo")
    return "admin", password


@click.command("serve")
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8080, show_default=True, type=int)
@click.option("--server", "server_name", type=click.Choice(list(serving.SERVERS)), default=next(iter(serving.SERVERS)),
              show_default=True, envvar="TASKSTORE_SERVER", show_envvar=True,
              help="The HTTP server: granian (a Rust server, the fastest measured) or gunicorn (gthread).")
@click.option("--workers", default=2, show_default=True, type=click.IntRange(1), help="Processes.")
@click.option("--threads", default=4, show_default=True, type=click.IntRange(1), help="Threads per process.")
@click.option("--demo", is_flag=True, help="Use a SQLite file in the instance folder, load demo data if empty.")
@click.option("--access-log/--no-access-log", default=False, show_default=True)
@click.option("-v", "--verbose", is_flag=True, help="With --demo: show each migration step as it runs.")
def serve_command(server_name: str, host: str, port: int, workers: int, threads: int, demo: bool, access_log: bool,
                  verbose: bool) -> None:
    """Serve the app with a production HTTP server (granian or gunicorn)."""
    from .. import create_app, instance_folder, metrics, request_log

    _check_port(host, port)
    base_url = f"http://{host}:{port}"
    overrides = _demo_overrides(instance_folder()) if demo else {}
    # Before the first app counts anything, and before the fork: every worker writes its metrics there.
    with metrics.multiprocess_directory() as directory:
        app = create_app(overrides)
        if app.config["TASKSTORE"].metrics != "off":
            log.info("metrics: each worker process writes its figures to %s", directory)
        if demo:
            _prepare_demo(app, instance_folder(), base_url, verbose=verbose)
        with app.app_context():
            db.engine.dispose()  # no connection may cross the fork into the workers

        serving.run(server_name, lambda: create_app(overrides), host=host, port=port, workers=workers,
                    threads=threads, access_log=access_log, worker_started=metrics.start_flushing,
                    log_formatter=request_log.formatter_for(app.config["TASKSTORE"]))
