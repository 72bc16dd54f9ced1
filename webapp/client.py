"""A small client for Python workers that use Task Store without Airflow.

It talks to the same worker API (``/execution/store/ti/...``) as Airflow's Task SDK and
behaves like it where it matters: one keep-alive connection, transient failures retried
with backoff, and a token that is swapped for the fresh one the server hands back, so a
task that runs longer than a token's lifetime keeps its access::

    with TaskStoreClient("http://taskstore:8080", token) as store:
        job_id = store.get("spark/job_id")
        if job_id is None:
            store.set("spark/job_id", submit_job(), retention=timedelta(days=2))
"""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import quote

import httpx
import jwt
from tenacity import (
    AsyncRetrying,
    RetryError,
    Retrying,
    retry_if_exception_type,
    stop_after_attempt,
    wait_random_exponential,
)

__all__ = [
    "NEVER_EXPIRE",
    "AssetStore",
    "AuthenticationError",
    "NotFoundError",
    "PayloadTooLargeError",
    "PermissionDeniedError",
    "ServiceUnavailableError",
    "TaskStoreClient",
    "TaskStoreError",
    "TaskStoreHTTPError",
    "ValidationError",
]

REFRESHED_TOKEN_HEADER = "Refreshed-API-Token"


class _NeverExpire:
    """The type of ``NEVER_EXPIRE``: a sentinel, because ``None`` already means "the default"."""

    def __repr__(self) -> str:
        return "NEVER_EXPIRE"


NEVER_EXPIRE = _NeverExpire()
"""Pass as ``retention`` to store a key without expiry."""


# --- errors ---------------------------------------------------------------------------------


class TaskStoreError(Exception):
    """Base class of every error this client raises (besides ``ValueError``/``TypeError``
    for arguments that are wrong before anything is sent)."""


class TaskStoreHTTPError(TaskStoreError):
    """The server refused the request (4xx), or answered something this client does not
    expect (a redirect): retrying it unchanged would not help."""

    def __init__(self, status: int, reason: str, message: str, field: str | None = None):
        super().__init__(f"{status} {reason}: {message}")
        self.status = status
        self.reason = reason
        self.message = message
        self.field = field  # the input the server blamed ("key" for a missing key)


class NotFoundError(TaskStoreHTTPError):
    """404: the task instance (or, outside ``get``, the key) does not exist."""


class AuthenticationError(TaskStoreHTTPError):
    """401: the token is missing, malformed, badly signed or expired."""


class PermissionDeniedError(TaskStoreHTTPError):
    """403: the token is valid but names another task instance."""


class ValidationError(TaskStoreHTTPError):
    """422: the key or the body was rejected; the message names the field and why."""


class PayloadTooLargeError(TaskStoreHTTPError):
    """413: the request body is over the server's hard limit."""


class ServiceUnavailableError(TaskStoreError):
    """The server stayed unreachable or kept answering 5xx after every retry.

    ``status`` is the last HTTP status seen, or ``None`` when no response came at all."""

    def __init__(self, message: str, *, status: int | None, attempts: int):
        super().__init__(message)
        self.message = message
        self.status = status
        self.attempts = attempts


_ERRORS_BY_STATUS: dict[int, type[TaskStoreHTTPError]] = {
    401: AuthenticationError,
    403: PermissionDeniedError,
    404: NotFoundError,
    413: PayloadTooLargeError,
    422: ValidationError,
}


class _Transient(Exception):
    """Internal: a failure worth another attempt (no response, or a 5xx)."""

    def __init__(self, status: int | None, message: str):
        super().__init__(message)
        self.status = status
        self.message = message


# Failures with no HTTP answer that another attempt may cure.
_TRANSPORT_ERRORS = (httpx.TimeoutException, httpx.NetworkError, httpx.RemoteProtocolError)


def _retry_policy(retries: int, retry_wait: float, retry_wait_max: float) -> dict[str, Any]:
    """The arguments of a tenacity ``Retrying`` / ``AsyncRetrying``: transient failures only,
    ``retries`` attempts, exponential waits with full jitter."""
    if retries < 1:
        raise ValueError("retries is a number of attempts and must be at least 1")
    return {
        "retry": retry_if_exception_type(_Transient),
        "stop": stop_after_attempt(retries),
        "wait": wait_random_exponential(multiplier=retry_wait, max=retry_wait_max),
    }


def _unavailable(exc: RetryError, method: str, path: str) -> ServiceUnavailableError:
    last = exc.last_attempt.exception()  # always a _Transient: nothing else is retried
    attempts = exc.last_attempt.attempt_number
    return ServiceUnavailableError(
        f"{method} {path} failed after {attempts} attempts: {last.message}", status=last.status, attempts=attempts,
    )


def _checked(method: str, response: httpx.Response) -> httpx.Response:
    """The response when it is a success; ``_Transient`` for a 5xx, a typed error otherwise."""
    if response.status_code >= 500:
        reason, message, _field = _error_detail(response)
        raise _Transient(response.status_code, f"{response.status_code} {reason}: {message}")
    if response.is_redirect:
        # Nothing on the worker API redirects: a redirect means a proxy or a mangled URL,
        # and following it could read or write somewhere else. Never treat it as success.
        raise TaskStoreHTTPError(
            response.status_code, "unexpected_redirect",
            f"{method} {response.request.url} was redirected to {response.headers.get('Location')}",
        )
    if not response.is_success:
        reason, message, field = _error_detail(response)
        error = _ERRORS_BY_STATUS.get(response.status_code, TaskStoreHTTPError)
        raise error(response.status_code, reason, message, field)
    return response


def _error_detail(response: httpx.Response) -> tuple[str, str, str | None]:
    """(reason, message, field) from the service's ``{"detail": {"reason", "message", "field"}}``
    body; something readable from any other body (a proxy's HTML page, a bare string)."""
    fallback = (response.reason_phrase.lower().replace(" ", "_") or "error", response.text.strip()[:500], None)
    try:
        detail = response.json().get("detail")
    except (ValueError, AttributeError):
        return fallback
    if isinstance(detail, dict) and "message" in detail:
        return str(detail.get("reason", fallback[0])), str(detail["message"]), detail.get("field")
    if isinstance(detail, str):
        return fallback[0], detail, None
    return fallback


# --- the client -----------------------------------------------------------------------------


class TaskStoreClient:
    """Read and write the keys of one task instance.

    ``base_url`` is the service root (``http://host:8080``); a URL that already ends in
    ``/execution`` works too. The task instance is the token's ``sub`` claim unless
    ``ti_id`` is given. ``retries`` is the number of attempts for a request that fails
    transiently (connection error, timeout, 5xx); waits grow exponentially from
    ``retry_wait`` seconds up to ``retry_wait_max``, with full jitter so that many workers
    recovering at once do not retry in lockstep. 4xx answers are never retried.
    ``transport`` is handed to ``httpx.Client`` (tests pass an ``httpx.MockTransport``).

    ``aget``, ``aset``, ``adelete`` and ``aclear`` do the same without blocking an event loop:
    they go through an ``httpx.AsyncClient`` made on first use (``async_transport`` is handed
    to it), with the same retries, errors and token refresh. Close it with ``aclose()`` (or
    ``async with``), which closes both connections.
    """

    def __init__(
        self,
        base_url: str,
        token: str,
        *,
        ti_id: str | None = None,
        default_retention_days: int = 30,
        timeout: float = 10.0,
        retries: int = 5,
        retry_wait: float = 0.1,
        retry_wait_max: float = 2.0,
        transport: httpx.BaseTransport | None = None,
        async_transport: httpx.AsyncBaseTransport | None = None,
    ):
        if not isinstance(default_retention_days, int) or default_retention_days < 0:
            raise ValueError("default_retention_days must be an integer >= 0 (0 = never expire)")
        self._retry_policy = _retry_policy(retries, retry_wait, retry_wait_max)
        self._token = token
        self.ti_id = str(ti_id) if ti_id is not None else _subject(token)
        self.default_retention_days = default_retention_days
        self._retrying = Retrying(**self._retry_policy)
        root = base_url.rstrip("/")
        if not root.endswith("/execution"):
            root += "/execution"
        # The trailing slash makes httpx append relative paths instead of replacing the last segment.
        self._base_url = root + "/"
        self._timeout = timeout
        self._http = httpx.Client(base_url=self._base_url, timeout=timeout, transport=transport)
        self._async_transport = async_transport
        self._async_http: httpx.AsyncClient | None = None
        self._async_loop: asyncio.AbstractEventLoop | None = None

    @property
    def token(self) -> str:
        """The token in use: the one given, or the latest the server refreshed it to."""
        return self._token

    # --- the four operations ----------------------------------------------------------------

    def get(self, key: str, default: Any = None) -> Any:
        """The key's value, or ``default`` when the key is absent or expired.

        A missing *task instance* is not a missing key: it raises ``NotFoundError``, so a
        wrong token or URL is not mistaken for "nothing stored yet"."""
        try:
            response = self._request("GET", self._key_path(key))
        except NotFoundError as exc:
            if exc.field == "key":
                return default
            raise
        return response.json()["value"]

    def set(self, key: str, value: Any, *, retention: timedelta | _NeverExpire | None = None) -> None:
        """Create or overwrite a key.

        ``retention`` is a ``timedelta`` (expires that long from now), ``NEVER_EXPIRE``, or
        ``None`` for ``default_retention_days`` (where 0 means never). ``None`` is not a
        storable value (delete the key instead): ``ValueError`` before anything is sent, as
        for NaN/Infinity; a value JSON cannot encode raises ``TypeError``."""
        if value is None:
            raise ValueError("value must not be None; use delete() to remove a key")
        body = json.dumps({"value": value, "expires_at": self._expiry(retention)}, allow_nan=False)
        self._request("PUT", self._key_path(key), content=body, headers={"Content-Type": "application/json"})

    def delete(self, key: str) -> None:
        """Delete one key; deleting a key that is not there is not an error."""
        self._request("DELETE", self._key_path(key))

    def clear(self) -> None:
        """Delete every key of this task instance (its own map index only)."""
        self._request("DELETE", f"store/ti/{self.ti_id}")

    async def aget(self, key: str, default: Any = None) -> Any:
        """``get`` without blocking the event loop."""
        try:
            response = await self._arequest("GET", self._key_path(key))
        except NotFoundError as exc:
            if exc.field == "key":
                return default
            raise
        return response.json()["value"]

    async def aset(self, key: str, value: Any, *, retention: timedelta | _NeverExpire | None = None) -> None:
        """``set`` without blocking the event loop."""
        if value is None:
            raise ValueError("value must not be None; use delete() to remove a key")
        body = json.dumps({"value": value, "expires_at": self._expiry(retention)}, allow_nan=False)
        await self._arequest("PUT", self._key_path(key), content=body, headers={"Content-Type": "application/json"})

    async def adelete(self, key: str) -> None:
        """``delete`` without blocking the event loop."""
        await self._arequest("DELETE", self._key_path(key))

    async def aclear(self) -> None:
        """``clear`` without blocking the event loop."""
        await self._arequest("DELETE", f"store/ti/{self.ti_id}")

    def asset(self, *, name: str | None = None, uri: str | None = None) -> AssetStore:
        """The keys of one asset (shared by every task and run that uses it; they never expire),
        named by its ``name`` or its ``uri``: exactly one of them."""
        if (name is None) == (uri is None):
            raise ValueError("pass exactly one of name= or uri=")
        return AssetStore(self, "name" if name is not None else "uri", name if name is not None else uri)

    # --- lifecycle --------------------------------------------------------------------------

    def close(self) -> None:
        """Close the connection of the synchronous methods (``aclose`` closes both)."""
        self._http.close()

    async def aclose(self) -> None:
        """Close both connections: the async methods' and the synchronous ones'."""
        if self._async_http is not None:
            http, self._async_http, self._async_loop = self._async_http, None, None
            await http.aclose()
        self._http.close()

    def __enter__(self) -> TaskStoreClient:
        return self

    def __exit__(self, *_exc_info: object) -> None:
        self.close()

    async def __aenter__(self) -> TaskStoreClient:
        return self

    async def __aexit__(self, *_exc_info: object) -> None:
        await self.aclose()

    # --- internals --------------------------------------------------------------------------

    def _key_path(self, key: str) -> str:
        # Percent-encode everything, "/" included, as Airflow's client does: the key stays one
        # path segment whatever it contains. A key of "." or ".." would still be a dot segment,
        # which URL normalization removes (httpx does), so its dots are encoded too.
        segment = quote(key, safe="")
        if segment in (".", ".."):
            segment = segment.replace(".", "%2E")
        return f"store/ti/{self.ti_id}/{segment}"

    def _expiry(self, retention: timedelta | _NeverExpire | None) -> str | None:
        """The absolute expiry the server stores: the worker decides it, the server stores it as given."""
        if retention is NEVER_EXPIRE:
            return None
        if retention is None:
            if self.default_retention_days == 0:
                return None
            retention = timedelta(days=self.default_retention_days)
        if not isinstance(retention, timedelta):
            raise TypeError(f"retention must be a timedelta, NEVER_EXPIRE or None, not {type(retention).__name__}")
        return (datetime.now(UTC) + retention).isoformat()

    def _request(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        """One call with retries; raises the typed errors."""
        try:
            # A copy per call: a Retrying object keeps per-call state.
            return self._retrying.copy()(self._attempt, method, path, **kwargs)
        except RetryError as exc:
            raise _unavailable(exc, method, path) from exc.last_attempt.exception()

    def _attempt(self, method: str, path: str, headers: dict[str, str] | None = None, **kwargs: Any) -> httpx.Response:
        try:
            response = self._http.request(method, path, headers=self._headers(headers), **kwargs)
        except _TRANSPORT_ERRORS as exc:
            raise _Transient(None, f"{type(exc).__name__}: {exc}") from exc
        return self._received(method, response)

    async def _arequest(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        """``_request`` on the async connection: the same retries (waiting with ``asyncio.sleep``)."""
        try:
            return await AsyncRetrying(**self._retry_policy)(self._aattempt, method, path, **kwargs)
        except RetryError as exc:
            raise _unavailable(exc, method, path) from exc.last_attempt.exception()

    async def _aattempt(self, method: str, path: str, headers: dict[str, str] | None = None,
                        **kwargs: Any) -> httpx.Response:
        try:
            response = await self._async_client().request(method, path, headers=self._headers(headers), **kwargs)
        except _TRANSPORT_ERRORS as exc:
            raise _Transient(None, f"{type(exc).__name__}: {exc}") from exc
        return self._received(method, response)

    def _async_client(self) -> httpx.AsyncClient:
        """The async connection, made on first use. An ``httpx.AsyncClient`` belongs to the event
        loop it first ran in: a call from another loop (a second ``asyncio.run``) gets a new one."""
        loop = asyncio.get_running_loop()
        if self._async_http is None or self._async_loop is not loop:
            self._async_http = httpx.AsyncClient(base_url=self._base_url, timeout=self._timeout,
                                                 transport=self._async_transport)
            self._async_loop = loop
        return self._async_http

    def _headers(self, headers: dict[str, str] | None) -> dict[str, str]:
        # Built per attempt, so a retry after a refresh uses the new token.
        return {**(headers or {}), "Authorization": f"Bearer {self._token}"}

    def _received(self, method: str, response: httpx.Response) -> httpx.Response:
        if fresh := response.headers.get(REFRESHED_TOKEN_HEADER):
            self._token = fresh
        return _checked(method, response)


class AssetStore:
    """One asset's keys through a ``TaskStoreClient`` (its connection, token and retries):
    ``get``, ``set``, ``delete`` and ``clear``, like a task instance's. The server records each
    write as the token's task instance's (or watcher's)."""

    def __init__(self, client: TaskStoreClient, by: str, identifier: str):
        self._client, self._by, self.identifier = client, by, identifier

    def _params(self, key: str | None = None) -> dict[str, str]:
        params = {self._by: self.identifier}
        if key is not None:
            params["key"] = key
        return params

    def get(self, key: str, default: Any = None) -> Any:
        """The key's value, or ``default`` when it is not there. An unknown asset is not a
        missing key: it raises ``NotFoundError``."""
        try:
            response = self._client._request("GET", self._path("value"), params=self._params(key))
        except NotFoundError as exc:
            if exc.field == "key":
                return default
            raise
        return response.json()["value"]

    def set(self, key: str, value: Any) -> None:
        """Create or overwrite a key (asset keys never expire)."""
        if value is None:
            raise ValueError("value must not be None; use delete() to remove a key")
        body = json.dumps({"value": value}, allow_nan=False)
        self._client._request("PUT", self._path("value"), params=self._params(key), content=body,
                              headers={"Content-Type": "application/json"})

    def delete(self, key: str) -> None:
        """Delete one key; deleting a key that is not there is not an error."""
        self._client._request("DELETE", self._path("value"), params=self._params(key))

    def clear(self) -> None:
        """Delete every key of the asset."""
        self._client._request("DELETE", self._path("clear"), params=self._params())

    async def aget(self, key: str, default: Any = None) -> Any:
        """``get`` without blocking the event loop."""
        try:
            response = await self._client._arequest("GET", self._path("value"), params=self._params(key))
        except NotFoundError as exc:
            if exc.field == "key":
                return default
            raise
        return response.json()["value"]

    async def aset(self, key: str, value: Any) -> None:
        """``set`` without blocking the event loop."""
        if value is None:
            raise ValueError("value must not be None; use delete() to remove a key")
        body = json.dumps({"value": value}, allow_nan=False)
        await self._client._arequest("PUT", self._path("value"), params=self._params(key), content=body,
                                     headers={"Content-Type": "application/json"})

    async def adelete(self, key: str) -> None:
        """``delete`` without blocking the event loop."""
        await self._client._arequest("DELETE", self._path("value"), params=self._params(key))

    async def aclear(self) -> None:
        """``clear`` without blocking the event loop."""
        await self._client._arequest("DELETE", self._path("clear"), params=self._params())

    def _path(self, operation: str) -> str:
        return f"store/asset/by-{self._by}/{operation}"


def _subject(token: str) -> str:
    """The task instance a token names. Read without verifying: only the server can verify,
    and it will refuse a bad token with a 401 anyway."""
    try:
        claims = jwt.decode(token, options={"verify_signature": False})
    except jwt.InvalidTokenError as exc:
        raise ValueError(f"token is not a JWT ({exc}); pass ti_id= explicitly") from None
    subject = claims.get("sub")
    if not subject:
        raise ValueError("token has no 'sub' claim naming the task instance; pass ti_id= explicitly")
    return str(subject)
