"""``taskstore api-keys`` and ``taskstore users``: credentials and their lifecycle."""

from __future__ import annotations

import sys

import click
from flask.cli import with_appcontext

from ..auth.roles import KEY_ROLES, ROLES
from ..transactions import committed


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
    from ..auth import api_keys

    record, key = committed(lambda: api_keys.create(name, role))
    click.echo(f"Created API key {record.name!r} with role {record.role}. Store it now; it is not shown again:")
    click.echo(key)


@api_keys_group.command("list")
@with_appcontext
def list_api_keys() -> None:
    """Every API key: name, the prefix that tells it apart, role, created, last used, revoked."""
    from ..auth import api_keys

    click.echo("name\tprefix\trole\tcreated\tlast used\trevoked")
    for record in api_keys.list_all():
        click.echo("\t".join((record.name, record.prefix + "…", record.role, _when(record.created_at),
                              _when(record.last_used_at), _when(record.revoked_at))))


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

    click.echo("username\trole\tcreated\tdisabled")
    for user in users.list_all():
        click.echo("\t".join((user.username, user.role, _when(user.created_at), _when(user.disabled_at))))


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
@with_appcontext
def create_user(name: str, role: str, password_stdin: bool) -> None:
    """Create a UI user; asks for the password twice unless --password-stdin."""
    from ..auth import users

    password = _read_password(password_stdin)
    user = committed(lambda: users.create(name, password, role, actor="cli"))
    click.echo(f"Created user {user.username!r} with role {user.role}")

