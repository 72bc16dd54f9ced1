"""How ``taskstore serve`` runs gunicorn: gthread workers, with connections spread evenly."""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from typing import Any

from gunicorn.app.base import BaseApplication
from gunicorn.glogging import Logger as GunicornLogger
from gunicorn.workers.gthread import ThreadWorker


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
                 worker_exited: Callable[[int], None] | None = None,
                 log_formatter: logging.Formatter | None = None) -> None:
    """Serve a WSGI app the production way: ``taskstore serve``, and the benchmark's floor
    with the very same settings. ``worker_started()`` runs in each worker once it has loaded
    the app, ``worker_exited(pid)`` in the arbiter when a worker has exited (metrics: a
    worker's flushing thread; its live gauges stop counting); ``log_formatter`` formats
    gunicorn's own log lines as the app's are."""

    def post_worker_init(_worker) -> None:
        if worker_started is not None:
            worker_started()

    def child_exit(_arbiter, worker) -> None:
        if worker_exited is not None:
            worker_exited(worker.pid)

    class Logger(GunicornLogger):
        def setup(self, cfg) -> None:  # at start, and again when a HUP reloads the configuration
            super().setup(cfg)
            if log_formatter is not None:
                for handler in self.error_log.handlers:
                    handler.setFormatter(log_formatter)

    class Server(BaseApplication):
        def load_config(self):
            self.cfg.set("post_worker_init", post_worker_init)
            self.cfg.set("child_exit", child_exit)
            self.cfg.set("logger_class", Logger)
            self.cfg.set("bind", f"{host}:{port}")
            self.cfg.set("workers", workers)
            self.cfg.set("threads", threads)
            self.cfg.set("worker_class", f"{__name__}.BalancedThreadWorker")
            self.cfg.set("accesslog", "-" if access_log else None)
            self.cfg.set("timeout", 60)
            self.cfg.set("keepalive", 5)
            if "control_socket_disable" in self.cfg.settings:
                # One shared socket path per user would clash between servers on one host.
                self.cfg.set("control_socket_disable", True)

        def load(self):
            return load_app()

    Server().run()
