"""Helpers shared by the tests: one definition of each, imported by name, e.g.
``from support import PASSWORD, key_url, log_in``.

A plain module: not a test module and not a conftest (``tests/`` is on ``sys.path`` under
pytest, so ``support`` imports like any module). Fixtures stay in ``conftest.py``; the ones that
need the app or the test client (``make_user``, ``login_as``, ``worker_put``, ...) are built
there from the functions here. A helper one module alone needs stays in that module; one that a
second module would copy belongs here.

- constants and settings: ``SECRET_KEY``, ``PASSWORD``, ``settings_for``, ``free_port``, ``new_uuid``
- URLs: ``key_url`` (worker API), ``store_url`` (admin API state store), ``ti_page_url`` (admin UI)
- the worker API: ``put_key``, ``worker_call``, ``detail``, ``canonical``, ``b64url``, ``token_claims``
- the admin UI's HTML: ``csrf_token``, ``table_rows``, ``log_in``
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
import re
import secrets
import socket
import uuid
from datetime import UTC, datetime, timedelta
from html import unescape
from html.parser import HTMLParser
from urllib.parse import quote

from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

SECRET_KEY = "test-secret-Vq3x8ZKpL2mN7rT4wY9bC6dF1gH5jS0a"  # random-looking: weak secrets are refused
PASSWORD = "correct horse battery"  # every user the make_user fixture creates has this password

WORKER_API = "/execution/store/ti"
ADMIN_API = "/api/v2"


# --- settings and processes -----------------------------------------------------------------


def settings_for(database_url: str) -> dict:
    """The settings every test app (and every server process the tests start) runs with."""
    return {"database_url": database_url, "secret_key": SECRET_KEY}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def new_uuid() -> str:
    return str(uuid.uuid4())


# --- URLs -------------------------------------------------------------------------------------


def _query(args: dict) -> str:
    pairs = "&".join(f"{name}={quote(str(value), safe='')}" for name, value in args.items() if value is not None)
    return f"?{pairs}" if pairs else ""


def key_url(ti: str, key: str | None = None, *, encode: bool = True) -> str:
    """The worker API URL of a key (percent-encoded as clients send it, unless ``encode`` is
    false), or of the whole task instance when ``key`` is None (DELETE there clears it)."""
    if key is None:
        return f"{WORKER_API}/{ti}"
    return f"{WORKER_API}/{ti}/{quote(key, safe='') if encode else key}"


def store_url(key: str | None = None, *, dag: str = "dag", run: str = "run_1", task: str = "task", **query) -> str:
    """The admin API URL of a task instance's state store, or of one key in it."""
    dag, run, task = (quote(name, safe="") for name in (dag, run, task))
    base = f"{ADMIN_API}/dags/{dag}/dagRuns/{run}/taskInstances/{task}/state-store"
    return (base if key is None else f"{base}/{quote(key, safe='')}") + _query(query)


def ti_page_url(dag_id: str = "dag", run_id: str = "run_1", task_id: str = "task", action: str = "", **query) -> str:
    """The admin UI page of a task instance (its key table), or one of its actions ("edit",
    "row", "delete", "extend", "clear"); ``query`` adds e.g. ``key=``, ``map_index=``."""
    path = f"/dags/{quote(dag_id, safe='')}/runs/{quote(run_id, safe='')}/tasks/{quote(task_id, safe='')}"
    return path + (f"/{action}" if action else "") + _query(query)


# --- the worker API ---------------------------------------------------------------------------


def put_key(http, headers: dict, ti: str, key: str, value, expires_at: datetime | str | None = None) -> None:
    """Write a key as a worker does and check it was stored (204). ``http`` is a Flask test
    client or an ``httpx.Client`` with a ``base_url``; the ``worker_put`` fixture wraps this."""
    if isinstance(expires_at, datetime):
        expires_at = expires_at.isoformat()
    response = http.put(key_url(ti, key), json={"value": value, "expires_at": expires_at}, headers=headers)
    assert response.status_code == 204, response.text


def worker_call(client, method: str, ti: str, key: str | None, headers: dict, value="v"):
    """One worker call: GET, PUT (with ``value``) or DELETE of a key, or CLEAR (DELETE on the TI)."""
    if method == "CLEAR":
        return client.delete(key_url(ti), headers=headers)
    if method == "PUT":
        return client.put(key_url(ti, key), data=json.dumps({"value": value}), headers=headers)
    return client.open(key_url(ti, key), method=method, headers=headers)


def detail(response) -> dict:
    """The ``detail`` of a JSON error answer (checking that it is JSON)."""
    assert response.mimetype == "application/json", response.data
    return response.get_json()["detail"]


def canonical(value) -> str:
    """Tells 3 from 3.0 from "3" and True from 1, unlike ==."""
    return json.dumps(value, sort_keys=True)


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def token_claims(app, ti: str, **overrides) -> dict:
    """The claims of a valid worker token for ``ti``; an override of None leaves the claim out."""
    from webapp.auth import tokens

    now = datetime.now(UTC)
    lifetime = timedelta(seconds=app.config["TASKSTORE"].token_lifetime_seconds)
    claims = {"sub": ti, "aud": tokens.AUDIENCE, "scope": tokens.SCOPE, "iat": now, "nbf": now, "exp": now + lifetime}
    claims.update(overrides)
    return {name: value for name, value in claims.items() if value is not None}


# --- the admin UI's HTML ----------------------------------------------------------------------


def csrf_token(html: str) -> str:
    """The CSRF token of the first form on a page (every UI page has one, the log-out form)."""
    return re.search(r'name="csrf_token"[^>]*value="([^"]+)"', html).group(1)


class _Table(HTMLParser):
    """The text of every table row, cell by cell (th and td)."""

    def __init__(self):
        super().__init__()
        self.rows: list[list[str]] = []
        self._cell: list[str] | None = None

    def handle_starttag(self, tag, attrs):
        if tag == "tr":
            self.rows.append([])
        elif tag in ("td", "th"):
            self._cell = []
        elif tag == "br" and self._cell is not None:
            self._cell.append(" ")

    def handle_endtag(self, tag):
        if tag in ("td", "th") and self._cell is not None:
            self.rows[-1].append(" ".join("".join(self._cell).split()))
            self._cell = None

    def handle_data(self, data):
        if self._cell is not None:
            self._cell.append(data)


def table_rows(html: str) -> list[list[str]]:
    """Every table row of a page (header rows too), each a list of its cells' text."""
    parser = _Table()
    parser.feed(html)
    return parser.rows


def shown_values(html: str) -> list[str]:
    """The text of every value a page shows (``<pre class="json">``, highlighted or not), as a
    person reads it: without the highlighting's tags, unescaped."""
    shown = re.findall(r'<pre class="json">(.*?)</pre>', html, re.S)
    return [unescape(re.sub(r"<[^>]*>", "", text)) for text in shown]


def log_in(client, username: str, password: str = PASSWORD, next_url: str | None = None):
    """Post the login form as a browser would (with the form's CSRF token); returns the answer:
    302 when logged in. The ``login_as`` fixture creates a user and logs the ``client`` in."""
    login_url = "/login" + (f"?next={quote(next_url)}" if next_url else "")
    token = csrf_token(client.get(login_url).text)
    return client.post(login_url, data={"username": username, "password": password, "csrf_token": token})


# --- throw-away databases ----------------------------------------------------------------------


@contextlib.contextmanager
def throwaway_database(server_url: str):
    """Create a database of its own on the given server; drop it afterwards."""
    url = make_url(server_url)
    name = f"taskstore_test_{os.getpid()}_{secrets.token_hex(4)}"
    admin = create_engine(url, isolation_level="AUTOCOMMIT")
    backend = url.get_backend_name()
    with admin.connect() as connection:
        if backend == "postgresql":
            connection.execute(text(f'CREATE DATABASE "{name}"'))
        else:
            connection.execute(text(f"CREATE DATABASE `{name}` CHARACTER SET utf8mb4"))
    try:
        yield url.set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as connection:
            if backend == "postgresql":
                connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
            else:
                connection.execute(text(f"DROP DATABASE IF EXISTS `{name}`"))
        admin.dispose()
