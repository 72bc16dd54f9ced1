"""The ``taskstore`` command: a Flask CLI group with the app's own commands.

One error path: every command's service errors (bad input, not found, conflicts), database
errors and configuration errors become a one-line message and exit status 1, never a
traceback; a database without the schema says to run ``taskstore db upgrade``."""

from __future__ import annotations

import functools
import re
import secrets
import sys
import time
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

import click
from flask import Flask, current_app
from flask.cli import FlaskGroup, with_appcontext
from flask_migrate.cli import db as db_group
from sqlalchemy.exc import DBAPIError, SQLAlchemyError

from . import store
from .auth.roles import KEY_ROLES, ROLES
from .config import ConfigError
from .errors import ServiceError
from .extensions import db
from .transactions import committed


def _unmigrated(exc: DBAPIError) -> bool:
    """A missing table: SQLite's message, PostgreSQL's SQLSTATE or MySQL/MariaDB's error number."""
    original = exc.orig
    number = original.args[0] if getattr(original, "args", ()) else None
    return "no such table" in str(original) or getattr(original, "sqlstate", None) == "42P01" or number == 1146


def one_line_errors(callback: Callable) -> Callable:
    """Errors a person can act on, as ``Error: <message>`` and exit status 1."""
    @functools.wraps(callback)
    def run(*args: Any, **kwargs: Any) -> Any:
        try:
            return callback(*args, **kwargs)
        except ServiceError as exc:
            raise click.ClickException(exc.message) from None
        except ConfigError as exc:
            raise click.ClickException(str(exc)) from None
        except DBAPIError as exc:
            if _unmigrated(exc):
                raise click.ClickException(
                    "the database has no Task Store tables yet (or an older schema): run `taskstore db upgrade`"
                ) from None
            raise click.ClickException(f"database error: {exc.orig}") from None
        except SQLAlchemyError as exc:
            raise click.ClickException(f"database error: {exc}") from None
    return run


def _with_one_line_errors(command: click.Command) -> click.Command:
    if isinstance(command, click.Group):
        for sub in command.commands.values():
            _with_one_line_errors(sub)
    elif command.callback is not None and not getattr(command.callback, "one_line_errors", False):
        command.callback = one_line_errors(command.callback)
        command.callback.one_line_errors = True
    return command


def register_commands(app: Flask) -> None:
    """The app's own commands, also on ``app.cli`` (Flask's test runner invokes that)."""
    for command in APP_COMMANDS:
        app.cli.add_command(command)


@click.group("api-keys", help="Manage admin API keys.")
def api_keys_group() -> None:
    pass


@api_keys_group.command("create")
@click.argument("name")
@click.option("--role", type=click.Choice(KEY_ROLES), default="admin", show_default=True,
              help="viewer, editor, admin as for people; service: the service API only (Airflow's backend).")
@with_appcontext
def create_api_key(name: str, role: str) -> None:
    """Create an admin API key; the key is printed once, alone on the last line."""
    from .auth import api_keys

    record, key = committed(lambda: api_keys.create(name, role))
    click.echo(f"Created API key {record.name!r} with role {record.role}. Store it now; it is not shown again:")
    click.echo(key)


@api_keys_group.command("list")
@with_appcontext
def list_api_keys() -> None:
    """Every API key: name, the prefix that tells it apart, role, created, last used, revoked."""
    from .auth import api_keys

    click.echo("name\tprefix\trole\tcreated\tlast used\trevoked")
    for record in api_keys.list_all():
        click.echo("\t".join((record.name, record.prefix + "…", record.role, _when(record.created_at),
                              _when(record.last_used_at), _when(record.revoked_at))))


@api_keys_group.command("revoke")
@click.argument("name_or_prefix")
@with_appcontext
def revoke_api_key(name_or_prefix: str) -> None:
    """Revoke a key (by name, or by the prefix `api-keys list` shows): it answers 401 from now on."""
    from .auth import api_keys

    def revoke():
        record = api_keys.find(name_or_prefix)
        api_keys.revoke(record, actor="cli")
        return f"{record.name!r} ({record.prefix}…)"

    click.echo(f"Revoked API key {committed(revoke)}")


@api_keys_group.command("delete")
@click.argument("name_or_prefix")
@with_appcontext
def delete_api_key(name_or_prefix: str) -> None:
    """Delete a key and its record (revoke keeps the record for the audit)."""
    from .auth import api_keys

    def remove():
        record = api_keys.find(name_or_prefix)
        api_keys.remove(record, actor="cli")
        return record.name

    click.echo(f"Deleted API key {committed(remove)!r}")


def _when(moment) -> str:
    return "-" if moment is None else moment.strftime("%Y-%m-%d %H:%M:%S UTC")


@click.group("users", help="Manage the people who log in to the admin UI.")
def users_group() -> None:
    pass


@users_group.command("list")
@with_appcontext
def list_users() -> None:
    """Every user: name, role, created, disabled."""
    from .auth import users

    click.echo("username\trole\tcreated\tdisabled")
    for user in users.list_all():
        click.echo("\t".join((user.username, user.role, _when(user.created_at), _when(user.disabled_at))))


def _user_change(describe: str, change) -> None:
    """Apply ``change(users, user)`` to one user in one transaction and say what happened."""
    from .auth import users

    def apply(name: str) -> dict[str, str]:
        user = users.require(name)
        change(users, user)
        return {"name": name, "role": user.role}  # read before the commit: a deleted user is gone after

    def command(name: str) -> None:
        click.echo(describe.format(**committed(lambda: apply(name))))

    return command


@users_group.command("set-role")
@click.argument("name")
@click.argument("role", type=click.Choice(ROLES))
@with_appcontext
def set_user_role(name: str, role: str) -> None:
    """Change a user's role; their sessions end (they log in again with the new role)."""
    _user_change("User {name!r} now has role {role}; their sessions ended",
                 lambda users, user: users.set_role(user, role, actor="cli"))(name)


@users_group.command("set-password")
@click.argument("name")
@click.option("--password-stdin", is_flag=True, help="Read the password from the first line of standard input.")
@with_appcontext
def set_user_password(name: str, password_stdin: bool) -> None:
    """Set a user's password; their sessions end."""
    password = _read_password(password_stdin)
    _user_change("Password of {name!r} changed; their sessions ended",
                 lambda users, user: users.set_password(user, password, actor="cli"))(name)


@users_group.command("disable")
@click.argument("name")
@with_appcontext
def disable_user(name: str) -> None:
    """Stop a user from logging in; their sessions end."""
    _user_change("User {name!r} disabled; their sessions ended",
                 lambda users, user: users.disable(user, actor="cli"))(name)


@users_group.command("enable")
@click.argument("name")
@with_appcontext
def enable_user(name: str) -> None:
    """Let a disabled user log in again."""
    _user_change("User {name!r} enabled", lambda users, user: users.enable(user, actor="cli"))(name)


@users_group.command("logout-everywhere")
@click.argument("name")
@with_appcontext
def end_user_sessions(name: str) -> None:
    """End every session of a user (a lost laptop, a shared screen)."""
    _user_change("Every session of {name!r} ended", lambda users, user: users.end_sessions(user, actor="cli"))(name)


@users_group.command("delete")
@click.argument("name")
@with_appcontext
def delete_user(name: str) -> None:
    """Delete a user and their sessions."""
    _user_change("User {name!r} deleted", lambda users, user: users.remove(user, actor="cli"))(name)


def _read_password(from_stdin: bool) -> str:
    if from_stdin:
        return sys.stdin.readline().rstrip("\r\n")
    return click.prompt("Password", hide_input=True, confirmation_prompt=True)


@users_group.command("create")
@click.argument("name")
@click.option("--role", type=click.Choice(ROLES), default="viewer", show_default=True,
              help="viewer reads; editor also changes keys; admin also manages users and API keys.")
@click.option("--password-stdin", is_flag=True, help="Read the password from the first line of standard input.")
@with_appcontext
def create_user(name: str, role: str, password_stdin: bool) -> None:
    """Create a UI user; asks for the password twice unless --password-stdin."""
    from .auth import users

    password = _read_password(password_stdin)
    user = committed(lambda: users.create(name, password, role, actor="cli"))
    click.echo(f"Created user {user.username!r} with role {user.role}")


@click.command("token")
@click.argument("ti_id", required=False)
@click.option("--watcher", help="A token for this named watcher instead: asset keys only, writes recorded as its.")
@with_appcontext
def token_command(ti_id: str | None, watcher: str | None) -> None:
    """Issue a worker token for a task instance (or --watcher NAME); the token is alone on the last line."""
    from . import runs
    from .auth import tokens

    if (ti_id is None) == (watcher is None):
        raise click.UsageError("give a task instance id or --watcher NAME (one of them)")
    if watcher is not None:
        token, expires_at = tokens.issue_for_watcher(watcher)
        click.echo(f"Token for watcher {watcher!r}, valid until {expires_at.isoformat()}:")
    else:
        ti = runs.get_task_instance_by_id(store.parse_ti_id(ti_id))
        token, expires_at = tokens.issue(ti.id)
        click.echo(f"Token for {ti.dag_id}/{ti.run_id}/{ti.task_id}[{ti.map_index}], "
                   f"valid until {expires_at.isoformat()}:")
    click.echo(token)


@click.group("assets", help="Manage assets, whose keys every task and watcher that uses them shares.")
def assets_group() -> None:
    pass


@assets_group.command("list")
@click.option("--name-pattern", help="Only assets whose name contains this (ignoring case).")
@click.option("--uri-pattern", help="Only assets whose URI contains this (ignoring case).")
@with_appcontext
def list_assets(name_pattern: str | None, uri_pattern: str | None) -> None:
    """Every asset: id, name, URI, group, keys, last write."""
    from . import assets

    click.echo("id\tname\turi\tgroup\tkeys\tlast write")
    offset = 0
    while True:
        rows, total = assets.listing(limit=1000, offset=offset, name_pattern=name_pattern, uri_pattern=uri_pattern)
        for row in rows:
            click.echo("\t".join((str(row.asset.id), row.asset.name, row.asset.uri, row.asset.group_name,
                                  str(row.key_count), _when(row.last_write))))
        offset += len(rows)
        if not rows or offset >= total:
            return


@assets_group.command("create")
@click.argument("name")
@click.option("--uri", help="The asset's URI (default: the name).")
@click.option("--group", default="", help="The asset's group.")
@with_appcontext
def create_asset(name: str, uri: str | None, group: str) -> None:
    """Register an asset; its id is alone on the last line."""
    from . import assets

    asset = committed(lambda: assets.create(name, uri if uri is not None else name, group))
    click.echo(f"Created asset {asset.name!r} ({asset.uri}):")
    click.echo(str(asset.id))


@assets_group.command("delete")
@click.argument("asset_id", type=int)
@with_appcontext
def delete_asset(asset_id: int) -> None:
    """Delete an asset and its keys."""
    from . import assets

    click.echo(f"Deleted asset {asset_id} and its {committed(lambda: assets.delete_asset(asset_id))} keys")


AGE = re.compile(r"(\d+)\s*([smhdw])")
AGE_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days", "w": "weeks"}


def _parse_age(_ctx, _param, raw: str | None) -> timedelta | None:
    """An age like 90d, 12h, 2w, 30m or 45s."""
    if raw is None:
        return None
    match = AGE.fullmatch(raw.strip())
    if not match or int(match.group(1)) == 0:
        raise click.BadParameter(f"{raw!r} is not an age such as 90d, 12h, 2w, 30m or 45s")
    return timedelta(**{AGE_UNITS[match.group(2)]: int(match.group(1))})


def _paced(batches, settings) -> tuple[int, int]:
    """Run batches of work with clean's pause after each; (total, batch count)."""
    total = count = 0
    started = time.monotonic()
    for done in batches:
        total += done
        count += 1
        # Without a pause, clean took a core and the write lock to itself: on 2 cores the
        # workers' p99 went to 5-7x its idle value while it ran (bench/RESULTS.md).
        time.sleep((time.monotonic() - started) * settings.cleanup_pause_ratio)
        started = time.monotonic()
    return total, count


@click.command("clean")
@click.option("--dry-run", is_flag=True, help="List what would be deleted instead of deleting it.")
@click.option("--runs-older-than", "runs_older_than", callback=_parse_age, metavar="AGE",
              help="Instead: delete runs with no activity for AGE (90d, 12h, 2w), with their task instances, "
                   "tries, keys and history.")
@with_appcontext
def clean_command(dry_run: bool, runs_older_than: timedelta | None) -> None:
    """Delete keys whose expiry has passed (or, with --runs-older-than, old runs), in paced batches."""
    settings = current_app.config["TASKSTORE"]
    if runs_older_than is not None:
        _purge_runs(runs_older_than, dry_run, settings)
        return
    if dry_run:
        count = 0
        for row in store.list_expired():
            count += 1
            labels = "\t".join(str(value) for value in row[1:-2])
            click.echo(f"{labels}\t{row.key}\t{row.expires_at.isoformat()}")
        click.echo(f"{count} expired keys would be deleted")
        return
    batch_size = settings.cleanup_batch_size
    total, batches = _paced(store.delete_expired(batch_size=batch_size), settings)
    orphans = sum(store.delete_orphaned_asset_keys(batch_size=batch_size))
    click.echo(f"Deleted {total} expired keys in {batches} batches of at most {batch_size}"
               + (f", and {orphans} keys of deleted assets" if orphans else ""))


def _purge_runs(age: timedelta, dry_run: bool, settings) -> None:
    from . import lifecycle
    from .models import utcnow

    cutoff = utcnow() - age
    if dry_run:
        count = 0
        for row in lifecycle.runs_to_purge(cutoff):
            count += 1
            click.echo(f"{row.dag_id}\t{row.run_id}\t{row.state}\t{row.created_at.isoformat()}")
        click.echo(f"{count} runs with no activity since {cutoff.isoformat()} would be deleted")
        return
    # A run's batch deletes its task instances and keys too: batches of runs are a tenth of clean's.
    batch_size = max(1, settings.cleanup_batch_size // 10)
    total, batches = _paced(lifecycle.purge_runs(cutoff, batch_size=batch_size), settings)
    click.echo(f"Deleted {total} runs with no activity since {cutoff.isoformat()} (with their task instances, "
               f"keys and history) in {batches} batches of at most {batch_size}")


@click.group("runs", help="DAG runs: clear task instances so their next try starts over.")
def runs_group() -> None:
    pass


@runs_group.command("clear")
@click.argument("dag_id")
@click.argument("run_id")
@click.option("--task", "task_ids", multiple=True, help="Only this task (repeatable; default: every task).")
@click.option("--map-index", "map_indexes", multiple=True, type=int, help="Only this map index (repeatable).")
@click.option("--keep-task-state", is_flag=True, help="Keep the keys (by default clearing discards them).")
@with_appcontext
def clear_run(dag_id: str, run_id: str, task_ids: tuple[str, ...], map_indexes: tuple[int, ...],
              keep_task_state: bool) -> None:
    """Reset task instances of a run to state none: their next try starts over."""
    from . import lifecycle

    def clear():
        done = lifecycle.clear(dag_id, run_id, task_ids=list(task_ids) or None, map_indexes=list(map_indexes) or None,
                               keep_task_state=keep_task_state, actor="cli")
        return len(done.task_instances), done.keys_discarded

    cleared, discarded = committed(clear)
    click.echo(f"Cleared {cleared} task instances of {dag_id}/{run_id}; "
               + ("their keys were kept" if keep_task_state else f"{discarded} keys discarded"))


@click.command("demo-data")
@with_appcontext
def demo_data_command() -> None:
    """Load realistic demo data: several DAGs, runs in different states, mapped tasks, retries."""
    from . import demo

    created = committed(demo.load)
    click.echo(f"Loaded {created.runs} DAG runs, {created.task_instances} task instances, {created.keys} keys")


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


def _prepare_demo(app: Flask, instance_path: Path, base_url: str) -> None:
    from flask_migrate import upgrade

    from . import demo, runs
    from .auth import api_keys

    with app.app_context():
        upgrade()
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


def _demo_admin_user(instance_path: Path) -> tuple[str, str]:
    """The demo's UI login: "admin" with a random password kept in the instance folder, so
    it survives restarts; the user is (re)made to match the file if either was removed."""
    from .auth import users

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
@click.option("--workers", default=2, show_default=True, type=click.IntRange(1), help="Processes.")
@click.option("--threads", default=4, show_default=True, type=click.IntRange(1), help="Threads per process.")
@click.option("--demo", is_flag=True, help="Use a SQLite file in the instance folder, load demo data if empty.")
@click.option("--access-log/--no-access-log", default=False, show_default=True)
def serve_command(host: str, port: int, workers: int, threads: int, demo: bool, access_log: bool) -> None:
    """Serve the app with gunicorn (a production WSGI server)."""
    from . import create_app, instance_folder, serving

    base_url = f"http://{host}:{port}"
    overrides = _demo_overrides(instance_folder()) if demo else {}
    app = create_app(overrides)
    if demo:
        _prepare_demo(app, instance_folder(), base_url)
    with app.app_context():
        db.engine.dispose()  # no connection may cross the fork into the workers

    serving.run_gunicorn(lambda: create_app(overrides), host=host, port=port, workers=workers, threads=threads,
                         access_log=access_log)


APP_COMMANDS = tuple(_with_one_line_errors(command) for command in (
    api_keys_group, users_group, token_command, assets_group, runs_group, clean_command, demo_data_command,
))


class TaskStoreGroup(FlaskGroup):
    """Flask's group, listing the commands without building the app: ``taskstore --help``
    works before anything is configured."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(self.commands)


@click.group(cls=TaskStoreGroup, create_app=lambda: _create_app_or_explain(), add_default_commands=False,
             add_version_option=False, load_dotenv=False)
def main() -> None:
    """Task Store: a key/value store per workflow task instance."""


def _create_app_or_explain() -> Flask:
    """A configuration error is shown as such."""
    from flask.cli import NoAppException

    from . import create_app

    try:
        return create_app()
    except ConfigError as exc:
        raise NoAppException(str(exc)) from None


for _command in (*APP_COMMANDS, _with_one_line_errors(serve_command), _with_one_line_errors(db_group)):
    main.add_command(_command)
