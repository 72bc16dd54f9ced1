"""The gunicorn worker ``taskstore serve`` runs: gthread, with connections spread evenly."""

from __future__ import annotations

import os

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
