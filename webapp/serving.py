"""How ``taskstore serve`` runs gunicorn: gthread workers, with connections spread evenly."""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

from gunicorn.app.base import BaseApplication
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
                 access_log: bool = False) -> None:
    """Serve a WSGI app the production way: ``taskstore serve``, and the benchmark's floor
    with the very same settings."""

    class Server(BaseApplication):
        def load_config(self):
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
