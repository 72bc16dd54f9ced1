"""The ``taskstore`` command: a Flask CLI group with the app's own commands (``access``:
API keys and people; ``data``: tokens, assets, runs, clean, export and import, demo data;
``serve``).

One error path: every command's service errors (bad input, not found, conflicts), database
errors and configuration errors become a one-line message and exit status 1, never a
traceback; a database without the schema says to run ``taskstore db upgrade``."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

import click
from flask import Flask
from flask.cli import FlaskGroup
from flask_migrate.cli import db as db_group
from sqlalchemy.exc import DBAPIError, SQLAlchemyError

from ..config import ConfigError
from ..errors import ServiceError


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


from . import access, data, serve  # noqa: E402  (the commands use one_line_errors' module)

APP_COMMANDS = tuple(_with_one_line_errors(command) for command in (
    access.api_keys_group, access.users_group, data.token_command, data.assets_group, data.runs_group,
    data.clean_command, data.export_command, data.import_command, data.demo_data_command,
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

    from .. import create_app

    try:
        return create_app()
    except ConfigError as exc:
        raise NoAppException(str(exc)) from None


for _command in (*APP_COMMANDS, _with_one_line_errors(serve.serve_command), _with_one_line_errors(db_group)):
    main.add_command(_command)
