"""How ``taskstore serve`` runs its HTTP server: granian (the default) or gunicorn.

Both run the same WSGI app in ``workers`` processes of ``threads`` threads each, restart a worker
that dies, finish the requests in flight on SIGTERM, and keep idle connections open for reuse.
granian is the default because it measured fastest here: with the same workers and threads, a
constant-JSON Flask route answered 2.1 to 2.6 times as many requests per second under granian
as under gunicorn gthread, and the worker API 1.3 to 1.8 times as many (bench/RESULTS.md)."""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from typing import Any

from gunicorn.app.base import BaseApplication
from gunicorn.glogging import Logger as GunicornLogger
from gunicorn.workers.gthread import ThreadWorker

# A request still running this long after SIGTERM is cut off: a worker call takes milliseconds and
# a write's deadline is at most 30 s, so this only ends a request that would never finish.
GRACEFUL_SECONDS = 30
KEEPALIVE_SECONDS = 5  # gunicorn: how long an idle connection waits for its next request


def run(server: str, load_app: Callable[[], Any], **settings: Any) -> None:
    """Serve with the server named (a key of ``SERVERS``, the first the default), with the
    settings ``run_granian`` and ``run_gunicorn`` share."""
    SERVERS[server](load_app, **settings)


def run_granian(load_app: Callable[[], Any], *, host: str, port: int, workers: int, threads: int,
                access_log: bool = False, worker_started: Callable[[], None] | None = None,
                log_formatter: logging.Formatter | None = None) -> None:
    """granian: a Rust HTTP server (keep-alive, parsing, writing the answer) calling the WSGI app
    from ``threads`` Python threads in each of ``workers`` processes, forked from this one.
    ``worker_started()`` runs in each worker after it has loaded the app; a worker that dies is
    started again; SIGTERM or SIGINT stops accepting, lets the requests in flight finish (up to
    ``GRACEFUL_SECONDS``) and exits."""
    from granian import Granian
    from granian.constants import HTTPModes, Interfaces
    from granian.http import HTTP1Settings

    def load(_target: str):
        app = load_app()
        if worker_started is not None:
            worker_started()
        return app

    formatter = log_formatter or logging.Formatter("[%(levelname)s] %(message)s")
    # granian's own lines and its access log go to stderr through the app's formatter, as gunicorn's do.
    log_config = {
        "formatters": {"generic": {"()": lambda: formatter}, "access": {"()": lambda: formatter}},
        "handlers": {
            "console": {"formatter": "generic", "class": "logging.StreamHandler", "stream": "ext://sys.stderr"},
            "access": {"formatter": "access", "class": "logging.StreamHandler", "stream": "ext://sys.stderr"},
        },
    }
    # granian's backpressure (requests let into Python at once) stays at its default: set to the
    # thread count, 32 keep-alive writers left some requests unanswered for 30 s.
    Granian(
        "taskstore", address=host, port=port, interface=Interfaces.WSGI, http=HTTPModes.http1,
        workers=workers, blocking_threads=threads,
        http1_settings=HTTP1Settings(keep_alive=True),
        respawn_failed_workers=True, workers_kill_timeout=GRACEFUL_SECONDS,
        log_access=access_log, log_dictconfig=log_config,
    ).serve(target_loader=load)


class BalancedThreadWorker(ThreadWorker):
    """gthread keeps each keep-alive connection in the worker that accepted it. On a small
    machine the worker that wins the first accept of a burst is still on the CPU for the next
    ones and takes them all: the benchmark found all 32 connections in one of two workers,
    which left half the CPU idle (1,150 req/s at 57 % busy instead of 3,300). Giving up the
    CPU after each accept lets the other workers, woken by the same connection, take theirs."""

    def accept(self, listener):
        super().accept(listener)
        os.sched_yield()


def run_gunicorn(load_app: Callable[[], Any], *, host: str, port: int, workers: int, threads: int,
                 access_log: bool = False, worker_started: Callable[[], None] | None = None,
                 log_formatter: logging.Formatter | None = None) -> None:
    """Serve a WSGI app the production way: ``taskstore serve``, and the benchmark's floor
    with the very same settings. ``worker_started()`` runs in each worker once it has loaded
    the app (metrics: a worker's flushing thread); ``log_formatter`` formats
    gunicorn's own log lines as the app's are."""

    def post_worker_init(_worker) -> None:
        if worker_started is not None:
            worker_started()

    class Logger(GunicornLogger):
        def setup(self, cfg) -> None:  # at start, and again when a HUP reloads the configuration
            super().setup(cfg)
            if log_formatter is not None:
                for handler in self.error_log.handlers:
                    handler.setFormatter(log_formatter)

    class Server(BaseApplication):
        def load_config(self):
            self.cfg.set("post_worker_init", post_worker_init)
            self.cfg.set("logger_class", Logger)
            self.cfg.set("bind", f"{host}:{port}")
            self.cfg.set("workers", workers)
            self.cfg.set("threads", threads)
            self.cfg.set("worker_class", f"{__name__}.BalancedThreadWorker")
            self.cfg.set("accesslog", "-" if access_log else None)
            self.cfg.set("timeout", 60)
            self.cfg.set("graceful_timeout", GRACEFUL_SECONDS)
            self.cfg.set("keepalive", KEEPALIVE_SECONDS)
            if "control_socket_disable" in self.cfg.settings:
                # One shared socket path per user would clash between servers on one host.
                self.cfg.set("control_socket_disable", True)

        def load(self):
            return load_app()

    Server().run()


# What ``taskstore serve --server`` offers, the default first.
SERVERS: dict[str, Callable[..., None]] = {"granian": run_granian, "gunicorn": run_gunicorn}
