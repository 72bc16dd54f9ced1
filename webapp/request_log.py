"""Logs, and what every request leaves behind: a request id, one log line, its metrics.

**Logs** go to stderr through one handler on the ``webapp`` logger (every module's logger is
under it), as JSON (one object per line) or text (``log_format``; ``auto``: text on a terminal,
JSON otherwise), from ``log_level`` up. Every record logged while a request is being answered
carries that request's id.

**Each request**: an ``X-Request-ID`` the caller sent, when it is printable ASCII of at most 128
characters, or a new one (32 hex digits); it is sent back in the response's ``X-Request-ID``.
When the request is answered (errors included): one INFO line on ``webapp.request`` with the
method, the route template, the status, the duration in ms, and who called (a worker token's
task instance or watcher; an API key or a person), and the request's metrics
(``metrics.observe_request``).

The hot path does no more than it must: the line is built only when INFO is on, written
straight to our handler when no other handler would see it (no LogRecord, no handler chain),
and metrics are observed only when they are on."""

from __future__ import annotations

import json
import logging
import os
import re
import sys
import time
from time import perf_counter
from typing import Any

from flask import Flask, Response, g, has_app_context, request

from . import metrics
from .config import Settings

ROOT_LOGGER = "webapp"
REQUEST_LOGGER = "webapp.request"
REQUEST_ID_HEADER = "X-Request-ID"
VALID_REQUEST_ID = re.compile(r"[\x20-\x7e]{1,128}")
LINE = "%s %s %s %.1f ms"  # the request line's message: method, route, status, duration
# The request line's fields its text form already shows in the message.
IN_MESSAGE = frozenset({"method", "route", "status", "duration_ms"})

request_log = logging.getLogger(REQUEST_LOGGER)


# --- formats ---------------------------------------------------------------------------------


_last_second: list[tuple[int, str]] = [(-1, "")]  # the last second formatted: most lines share theirs


def _utc(created: float) -> str:
    """ISO 8601 in UTC, to the millisecond."""
    second = int(created)
    cached = _last_second[0]  # one (second, text) pair, replaced whole: threads never see half of one
    if cached[0] != second:
        cached = _last_second[0] = (second, time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(second)))
    return f"{cached[1]}.{int((created - second) * 1000):03d}Z"


_encode = json.JSONEncoder(default=str).encode
_quote = json.encoder.encode_basestring_ascii  # a str as JSON (the C function where there is one)
_quoted: dict[str, str] = {}  # JSON of the strings lines repeat: field names, loggers, levels, routes, methods
REPEATED = frozenset({"method", "route"})  # fields whose values are few (route templates, not paths)


def _repeated(text: str) -> str:
    quoted = _quoted.get(text)
    if quoted is None:
        quoted = _quote(text)
        if len(_quoted) < 10_000:  # a bound, whatever a caller logs
            _quoted[text] = quoted
    return quoted


def _json(name: str, value: Any) -> str:
    kind = value.__class__
    if kind is str:
        return _repeated(value) if name in REPEATED else _quote(value)
    if kind is int or kind is float:
        return repr(value)
    return _encode(value)


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time (UTC), level, logger, message, the request id when there
    is one, the record's ``fields``, and the traceback as ``exception``. Written out piece by
    piece, with the JSON of repeated strings kept: a request line is most of what is logged."""

    def format(self, record: logging.LogRecord) -> str:
        values = record.__dict__
        extra = []
        if record.exc_info:
            extra += (', "exception": ', _quote(self.formatException(record.exc_info)))
        if record.stack_info:
            extra += (', "stack": ', _quote(self.formatStack(record.stack_info)))
        return self.line(record.created, record.levelname, record.name, record.getMessage(),
                         values.get("request_id"), values.get("fields"), "".join(extra))

    @staticmethod
    def line(created: float, level: str, logger: str, message: str, request_id: str | None,
             fields: dict | None, tail: str = "") -> str:
        parts = ['{"time": "', _utc(created), '", "level": ', _repeated(level), ', "logger": ', _repeated(logger),
                 ', "message": ', _quote(message)]
        if request_id is not None:
            parts += (', "request_id": ', _quote(request_id))
        if fields:
            for name, value in fields.items():
                parts += (", ", _repeated(name), ": ", _json(name, value))
        parts += (tail, "}")
        return "".join(parts)


class TextFormatter(logging.Formatter):
    """``time level logger [request id] message key=value ...``, the traceback below."""

    def format(self, record: logging.LogRecord) -> str:
        tail = ""
        if record.exc_info:
            tail += "\n" + self.formatException(record.exc_info)
        if record.stack_info:
            tail += "\n" + self.formatStack(record.stack_info)
        return self.line(record.created, record.levelname, record.name, record.getMessage(),
                         getattr(record, "request_id", None), getattr(record, "fields", None), tail)

    @staticmethod
    def line(created: float, level: str, logger: str, message: str, request_id: str | None,
             fields: dict | None, tail: str = "") -> str:
        text = f"{_utc(created)} {level} {logger} [{request_id or '-'}] {message}"
        if fields:
            text += "".join(f" {name}={value}" for name, value in fields.items() if name not in IN_MESSAGE)
        return text + tail


def formatter_for(settings: Settings) -> logging.Formatter:
    chosen = settings.log_format
    if chosen == "auto":
        chosen = "text" if sys.stderr.isatty() else "json"
    return JsonFormatter() if chosen == "json" else TextFormatter()


class _RequestId(logging.Filter):
    """Give every record the id of the request being answered (None outside one)."""

    def filter(self, record: logging.LogRecord) -> bool:
        if not hasattr(record, "request_id"):
            record.request_id = g.get("request_id") if has_app_context() else None
        return True


class _StderrHandler(logging.StreamHandler):
    """Writes to whatever ``sys.stderr`` is when a record comes (as logging's last resort does)."""

    taskstore = True  # ours: the next configure_logging replaces it

    def __init__(self) -> None:
        logging.Handler.__init__(self)

    @property
    def stream(self):  # type: ignore[override]
        return sys.stderr

    @stream.setter
    def stream(self, _value) -> None:
        pass

    def write_line(self, line: str) -> None:
        """A line its formatter made already: what ``emit`` does after formatting."""
        with self.lock:
            stream = sys.stderr
            stream.write(line + "\n")
            stream.flush()


# Our handler while it is the only one a request line would reach: the request hook then
# formats the line itself and hands it over, skipping the LogRecord and the handler chain
# (most of a line's cost). Anything else listening (a root handler, as pytest's caplog adds,
# or a handler on a webapp logger) gets the record the usual way.
_direct: _StderrHandler | None = None


def configure_logging(settings: Settings) -> None:
    """One handler on the ``webapp`` logger, in place of any earlier one of ours and Flask's own
    (which would print every record a second time). Records still propagate, so a handler the
    host process put on the root logger (pytest's caplog) sees them too."""
    from flask.logging import default_handler

    logger = logging.getLogger(ROOT_LOGGER)
    for handler in list(logger.handlers):
        if getattr(handler, "taskstore", False) or handler is default_handler:
            logger.removeHandler(handler)
    handler = _StderrHandler()
    handler.setFormatter(formatter_for(settings))
    handler.addFilter(_RequestId())
    logger.addHandler(handler)
    logger.setLevel(settings.log_level)
    global _direct
    _direct = handler


def _only_ours() -> _StderrHandler | None:
    """Our handler, if a request line would reach no other (checked per line: handlers come and go)."""
    handler = _direct
    if (handler is None or logging.root.handlers or request_log.handlers or not request_log.propagate
            or request_log.filters or handler.level > logging.INFO):
        return None
    parent = request_log.parent
    if parent is None or parent.handlers != [handler] or parent.filters:
        return None
    return handler


# --- each request ----------------------------------------------------------------------------


_UUID4_CLEAR = ~(0xF000 << 64) & ~(0xC000 << 48)
_UUID4_SET = (0x4000 << 64) | (0x8000 << 48)


def new_request_id() -> str:
    """A random (version 4) UUID's 32 hex digits; half the time ``uuid.uuid4().hex`` takes."""
    return f"{(int.from_bytes(os.urandom(16), 'big') & _UUID4_CLEAR) | _UUID4_SET:032x}"


def _request_id() -> str:
    given = request.environ.get("HTTP_X_REQUEST_ID")
    return given if given is not None and VALID_REQUEST_ID.fullmatch(given) else new_request_id()


def _begin() -> None:
    g.request_started = perf_counter()
    g.request_id = _request_id()


def _caller() -> dict[str, str]:
    """Who made the request, as far as its authentication found out."""
    token = g.get("worker_token")
    if token is not None:
        return {"watcher": token.watcher} if token.watcher is not None else {"ti_id": token.ti_id}
    principal = g.get("principal")
    if principal is not None:
        return {"principal": principal.name}
    user = g.get("user")
    if user is not None:
        return {"principal": user.username}
    return {}


def init_app(app: Flask, settings: Settings) -> None:
    """Configure logging and hook every request of ``app``: its id first of all, its line and
    metrics once it is answered."""
    configure_logging(settings)
    observe = settings.metrics != "off"
    if observe:
        from .extensions import db

        with app.app_context():
            metrics.serve_process(db.engine.pool)

    def finish(response: Response) -> Response:
        started = g.get("request_started")
        seconds = perf_counter() - started if started is not None else 0.0
        request_id = g.get("request_id") or _request_id()
        response.headers[REQUEST_ID_HEADER] = request_id
        rule = request.url_rule
        route = rule.rule if rule is not None else metrics.UNMATCHED_ROUTE
        status = response.status_code
        if observe:
            metrics.observe_request(route, request.method, status, seconds)
        if request_log.isEnabledFor(logging.INFO):
            milliseconds = round(seconds * 1000, 2)
            method = request.method
            fields = {"method": method, "route": route, "status": status, "duration_ms": milliseconds, **_caller()}
            handler = _only_ours()
            if handler is not None:
                handler.write_line(handler.formatter.line(time.time(), "INFO", REQUEST_LOGGER, LINE % (
                    method, route, status, milliseconds), request_id, fields))
            else:
                # Logger.handle, as Logger.info would, but without looking up the caller's source
                # line (the same line every time).
                record = request_log.makeRecord(REQUEST_LOGGER, logging.INFO, "", 0, LINE,
                                                (method, route, status, milliseconds), None)
                record.request_id = request_id
                record.fields = fields
                request_log.handle(record)
        return response

    # First of every hook: the id exists before anything can fail or log.
    app.before_request_funcs.setdefault(None, []).insert(0, _begin)
    app.after_request(finish)
