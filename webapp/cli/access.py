"""``taskstore api-keys`` and ``taskstore users``: credentials and their lifecycle."""

from __future__ import annotations

import sys

import click
from flask.cli import with_appcontext

from ..auth.roles import KEY_ROLES, ROLES
from ..transactions import committed

# The DAGs and assets a person or API key may see: the same two options everywhere.
DAGS_HELP = ("DAG ids it may see: patterns with * and ?, comma-separated ('etl_*,ml_*'); others answer 404. "
             "Default: every DAG")
ASSETS_HELP = "asset names it may see, as --dags. Default: every asset"


def limit_options(command):
    command = click.option("--assets", default=None, metavar="PATTERNS", help=ASSETS_HELP)(command)
    return click.option("--dags", default=None, metavar="PATTERNS", help=DAGS_HELP)(command)


def _limits_text(record) -> str:
    from ..auth import name_patterns

    return name_patterns.Limits.of(record).describe()


@click.group("api-keys", help="Manage admin API keys.")
def api_keys_group() -> None:
    pass


@api_keys_group.command("create")
@click.argument("name")
@click.option("--role", type=click.Choice(KEY_ROLES), default="admin", show_default=True,
              help="viewer, editor, admin as for people; service: the service API only (Airflow's backend); "
                   "metrics: /metrics only (a Prometheus server).")
@limit_options
@with_appcontext
def create_api_key(name: str, role: str, dags: str | None, assets: str | None) -> None:
    """Create an admin API key; the key is printed once, alone on the last line."""
    from ..auth import api_keys, name_patterns

    limits = name_patterns.Limits.parse(dags, assets)
    record, key = committed(lambda: api_keys.create(name, role, limits=limits))
    click.echo(f"Created API key {record.name!r} with role {record.role} ({_limits_text(record)}). "
               "Store it now; it is not shown again:")
    click.echo(key)


@api_keys_group.command("list")
@with_appcontext
def list_api_keys() -> None:
    """Every API key: name, the prefix that tells it apart, role, created, last used, revoked."""
    from ..auth import api_keys

    click.echo("name\tprefix\trole\tdags\tassets\tcreated\tlast used\trevoked")
    for record in api_keys.list_all():
        click.echo("\t".join((record.name, record.prefix + "…", record.role, record.dag_patterns or "*",
                              record.asset_patterns or "*", _when(record.created_at),
                              _when(record.last_used_at), _when(record.revoked_at))))


@api_keys_group.command("limit")
@click.argument("name_or_prefix")
@limit_options
@with_appcontext
def limit_api_key(name_or_prefix: str, dags: str | None, assets: str | None) -> None:
    """Change the DAGs and assets a key may see (each option given replaces its patterns; '*' for all)."""
    from ..auth import api_keys

    def change():
        record = api_keys.find(name_or_prefix)
        api_keys.set_limits(record, dags=dags, assets=assets, actor="cli")
        return f"API key {record.name!r} now sees {_limits_text(record)}"

    click.echo(committed(change))


@api_keys_group.command("revoke")
@click.argument("name_or_prefix")
@with_appcontext
def revoke_api_key(name_or_prefix: str) -> None:
    """Revoke a key (by name, or by the prefix `api-keys list` shows): it answers 401 from now on."""
    from ..auth import api_keys

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
    from ..auth import api_keys

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
    from ..auth import users

    click.echo("username\trole\tdags\tassets\tcreated\tdisabled")
    for user in users.list_all():
        click.echo("\t".join((user.username, user.role, user.dag_patterns or "*", user.asset_patterns or "*",
                              _when(user.created_at), _when(user.disabled_at))))


def _user_change(describe: str, change) -> None:
    """Apply ``change(users, user)`` to one user in one transaction and say what happened."""
    from ..auth import users

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
@limit_options
@with_appcontext
def create_user(name: str, role: str, password_stdin: bool, dags: str | None, assets: str | None) -> None:
    """Create a UI user; asks for the password twice unless --password-stdin."""
    from ..auth import name_patterns, users

    limits = name_patterns.Limits.parse(dags, assets)  # refused before the password is asked
    password = _read_password(password_stdin)
    user = committed(lambda: users.create(name, password, role, actor="cli", limits=limits))
    click.echo(f"Created user {user.username!r} with role {user.role} ({_limits_text(user)})")


@users_group.command("limit")
@click.argument("name")
@limit_options
@with_appcontext
def limit_user(name: str, dags: str | None, assets: str | None) -> None:
    """Change the DAGs and assets a user sees, from their next page (each option given replaces its patterns)."""
    from ..auth import users

    def change():
        user = users.require(name)
        users.set_limits(user, dags=dags, assets=assets, actor="cli")
        return f"User {user.username!r} now sees {_limits_text(user)}"

    click.echo(committed(change))

