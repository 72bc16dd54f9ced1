"""Prometheus metrics: what a process counts, and the text a scrape of ``/metrics`` reads.

Nothing is counted until ``enable()`` (the app factory calls it unless ``metrics = off``);
until then, and with metrics off, every ``count_*`` and ``observe_*`` function returns at once.
Nothing here imports Flask: the store and the login throttle count through these functions,
and the request hook (``webapp.request_log``) and the ``/metrics`` view call the rest.

**Several processes.** ``taskstore serve`` runs gunicorn workers, and a scrape reaches one of
them. With ``PROMETHEUS_MULTIPROC_DIR`` set (``serve`` sets it to a fresh private directory
before forking, unless it is set already), each process writes its figures to its own files
there and a scrape reads every process's files: counters and histograms add up across the
workers, dead ones included (a restarted worker's requests still count); the pool gauges add
up across the live workers only (each scrape first drops the live gauges of processes that no
longer exist, whichever server ran them).
Without it (tests, ``flask run``) the figures live in this process, in prometheus-client's
default registry, beside its process and garbage-collector metrics.

prometheus-client is imported by ``enable()``, never at import time: it picks its
multiprocess mode from the environment when it is first imported."""

from __future__ import annotations

import atexit
import logging
import math
import os
import shutil
import tempfile
import threading
import time
from bisect import bisect_left
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from typing import Any

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
UNMATCHED_ROUTE = "unmatched"  # the route label of a request that matched no route (404, 405)
METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})  # any other: "other"
# Refused requests, by status: the reason is the one the API's error bodies give.
REFUSALS = {401: "unauthenticated", 403: "forbidden", 404: "not_found", 413: "payload_too_large",
            422: "validation_error", 429: "too_many_attempts"}
STORE_OPERATIONS = ("read", "write", "delete", "clear")
STORE_SCOPES = ("task", "asset")  # the store's kinds of scope (``ScopeKind.name``)
# Worker calls take 1 to 20 ms; listings and edits up to a few hundred; a deadline 5 or 30 s.
LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)


class _Metrics:
    """The metric objects of this process, and what the hot path adds to them.

    A request does not write to the metric objects: in multiprocess mode each write is a lock
    and a write to a memory-mapped file, and a worker call would make five. It adds to plain
    counts in this process instead, under one lock, and ``flush`` adds those to the metric
    objects: a scrape flushes the process it reaches, and in multiprocess mode a thread of each
    process flushes every ``FLUSH_SECONDS`` (and at exit), so a scrape shows the other workers'
    figures of up to that long ago."""

    def __init__(self, directory: str | None):
        from prometheus_client import REGISTRY, Counter, Gauge, Histogram, values

        if directory and not values.ValueClass._multiprocess:
            # prometheus-client chooses how values are kept when first imported; it was imported
            # before the directory was set, so choose now what it would have chosen then.
            values.ValueClass = values.MultiProcessValue()
        self.directory = directory
        registry = None if directory else REGISTRY  # several processes: the scrape reads the files
        self.requests = Counter("taskstore_http_requests", "HTTP requests answered, by route template, method "
                                "and status", ("route", "method", "status"), registry=registry)
        self.latency = Histogram("taskstore_http_request_duration_seconds", "Time to answer a request, from "
                                 "the app's first hook to its last", ("route", "method"), buckets=LATENCY_BUCKETS,
                                 registry=registry)
        self.refusals = Counter("taskstore_refusals", "Requests refused, by reason: unauthenticated (401), "
                                "forbidden (403), not_found (404), payload_too_large (413), validation_error (422), "
                                "too_many_attempts (429)", ("reason",), registry=registry)
        self.store_operations = Counter("taskstore_store_operations", "Reads, writes, deletes and clears the "
                                        "store performed, by scope (task, asset)", ("operation", "scope"),
                                        registry=registry)
        self.login_throttled = Counter("taskstore_login_throttled", "Logins refused by the login throttle",
                                       registry=registry)
        self.pool_in_use = Gauge("taskstore_db_pool_connections_in_use", "Database connections checked out of "
                                 "the pool, summed over the live processes", multiprocess_mode="livesum",
                                 registry=registry)
        self.pool_overflow = Gauge("taskstore_db_pool_overflow", "Connections open beyond the pool's size, "
                                   "summed over the live processes", multiprocess_mode="livesum", registry=registry)
        self.bounds = (*LATENCY_BUCKETS, math.inf)  # the histogram's buckets, +Inf last, as its children keep them
        self.refused = {status: self.refusals.labels(reason) for status, reason in REFUSALS.items()}
        for operation in STORE_OPERATIONS:
            for scope in STORE_SCOPES:
                self.store_operations.labels(operation, scope)  # shown from the start, at 0
        self.request_children: dict[tuple[str, str, int], tuple[Any, Any, Any]] = {}
        self.lock = threading.Lock()  # the pending counts
        self.flush_lock = threading.Lock()  # one flush at a time, so that none overtakes another
        self.reset_pending()
        self.pool: Any = None  # this process's connection pool, read by each flush
        self.pool_shown: tuple[int, int] | None = None
        self.flusher_pid: int | None = None

    def reset_pending(self) -> None:
        # (route, method, status) -> [count, sum of seconds, count per bucket]
        self.pending_requests: dict[tuple[str, str, int], list] = {}
        self.pending_store: dict[tuple[str, str], int] = {}  # (operation, scope) -> count

    def children_for(self, key: tuple[str, str, int]) -> tuple[Any, Any, Any]:
        children = self.request_children.get(key)
        if children is None:
            route, method, status = key
            histogram = self.latency.labels(route, method)
            assert tuple(histogram._upper_bounds) == self.bounds
            children = (self.requests.labels(route, method, str(status)), histogram, self.refused.get(status))
            self.request_children[key] = children
        return children

    def flush(self) -> None:
        with self.flush_lock:
            with self.lock:
                requests, stores = self.pending_requests, self.pending_store
                self.reset_pending()
            for key, (count, seconds, buckets) in requests.items():
                counter, histogram, refusal = self.children_for(key)
                counter.inc(count)
                # A histogram child takes one observation at a time; its sum and buckets (values
                # like any counter's) take what this process gathered since the last flush.
                histogram._sum.inc(seconds)
                for bucket, added in zip(histogram._buckets, buckets, strict=True):
                    if added:
                        bucket.inc(added)
                if refusal is not None:
                    refusal.inc(count)
            for (operation, scope), count in stores.items():
                self.store_operations.labels(operation, scope).inc(count)
            pool = self.pool
            if pool is not None:
                checked_out = getattr(pool, "checkedout", None)
                overflow = getattr(pool, "overflow", None)
                shown = (checked_out() if checked_out else 0, max(0, overflow()) if overflow else 0)
                if shown != self.pool_shown:  # each write is a file write in multiprocess mode
                    self.pool_in_use.set(shown[0])
                    self.pool_overflow.set(shown[1])
                    self.pool_shown = shown


_metrics: _Metrics | None = None
_enable_lock = threading.Lock()
FLUSH_SECONDS = 1.0
log = logging.getLogger(__name__)


def enable() -> None:
    """Start counting in this process (once; later calls change nothing). In multiprocess
    mode when ``PROMETHEUS_MULTIPROC_DIR`` is set."""
    global _metrics
    with _enable_lock:
        if _metrics is None:
            _metrics = _Metrics(os.environ.get(MULTIPROC_ENV) or None)
            os.register_at_fork(after_in_child=_forked)


def _forked() -> None:
    """A new process (a gunicorn worker) counts from nothing, and has no flushing thread yet."""
    metrics = _metrics
    if metrics is not None:
        metrics.lock, metrics.flush_lock = threading.Lock(), threading.Lock()
        metrics.reset_pending()
        metrics.pool, metrics.pool_shown, metrics.flusher_pid = None, None, None


def enabled() -> bool:
    return _metrics is not None


def multiprocess() -> bool:
    return _metrics is not None and _metrics.directory is not None


def serve_process(pool: Any) -> None:
    """This process answers requests with this connection pool: each flush reads it."""
    if _metrics is not None:
        _metrics.pool = pool


def start_flushing() -> None:
    """In multiprocess mode, flush every ``FLUSH_SECONDS`` from a thread of this process, and at
    its exit: for each gunicorn worker once it has started (never the arbiter, which forks: a
    fork while a thread held a lock would leave the child that lock held)."""
    metrics = _metrics
    if metrics is None or metrics.directory is None:
        return
    with _enable_lock:
        if metrics.flusher_pid == os.getpid():
            return
        metrics.flusher_pid = os.getpid()
    threading.Thread(target=_flush_every_second, name="taskstore-metrics", daemon=True).start()
    atexit.register(flush)


def _flush_every_second() -> None:
    while True:
        time.sleep(FLUSH_SECONDS)
        try:
            flush()
        except Exception:  # the figures may lag; the thread must not die
            log.exception("metrics: could not add this process's figures to the shared files")


def flush() -> None:
    """Add what this process counted since the last flush to the metric objects."""
    if _metrics is not None:
        _metrics.flush()


# --- counting: the hot path --------------------------------------------------------------------


def observe_request(route: str, method: str, status: int, seconds: float) -> None:
    """A request answered: its count and latency, and a refusal by its status."""
    metrics = _metrics
    if metrics is None:
        return
    if method not in METHODS:  # a client may send any word: bounded labels, bounded memory
        method = "other"
    bucket = bisect_left(metrics.bounds, seconds)
    with metrics.lock:
        pending = metrics.pending_requests.get((route, method, status))
        if pending is None:
            pending = metrics.pending_requests[(route, method, status)] = [0, 0.0, [0] * len(metrics.bounds)]
        pending[0] += 1
        pending[1] += seconds
        pending[2][bucket] += 1


def count_store_operation(operation: str, scope: str) -> None:
    """The store performed a read, write, delete or clear on a scope of this kind."""
    metrics = _metrics
    if metrics is not None:
        with metrics.lock:
            metrics.pending_store[(operation, scope)] = metrics.pending_store.get((operation, scope), 0) + 1


def count_login_throttled() -> None:
    if _metrics is not None:
        _metrics.login_throttled.inc()


# --- the scrape ---------------------------------------------------------------------------------


def clean_families(runs: Iterable[Any]) -> list:
    """The clean metrics, from the records ``taskstore clean`` keeps in the database (it runs as
    its own process, maybe on another host, so it cannot count in the server's files): each
    run has ``job``, ``finished_at`` (an aware datetime), ``duration_seconds``, ``deleted`` and
    ``deleted_total``."""
    from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

    finished = GaugeMetricFamily("taskstore_clean_last_success_timestamp_seconds",
                                 "When the last successful taskstore clean of this job finished (Unix time)",
                                 labels=("job",))
    duration = GaugeMetricFamily("taskstore_clean_last_duration_seconds",
                                 "How long the last successful taskstore clean of this job took", labels=("job",))
    deleted = GaugeMetricFamily("taskstore_clean_last_deleted",
                                "What the last successful taskstore clean of this job deleted: keys (expired_keys) "
                                "or runs with their task instances, keys and history (old_runs)", labels=("job",))
    total = CounterMetricFamily("taskstore_clean_deleted",
                                "What every successful taskstore clean of this job deleted, together",
                                labels=("job",))
    for run in runs:
        finished.add_metric((run.job,), run.finished_at.timestamp())
        duration.add_metric((run.job,), run.duration_seconds)
        deleted.add_metric((run.job,), run.deleted)
        total.add_metric((run.job,), run.deleted_total)
    return [finished, duration, deleted, total]


class _Families:
    def __init__(self, collect: Callable[[], Iterable]):
        self.collect = collect


def exposition(extra_families: Iterable = ()) -> tuple[bytes, str]:
    """The text format a scrape reads (and its content type): every process's figures in
    multiprocess mode, this process's otherwise, then ``extra_families``."""
    from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, CollectorRegistry, generate_latest
    from prometheus_client.multiprocess import MultiProcessCollector

    metrics = _metrics
    if metrics is None:
        raise RuntimeError("metrics are not enabled in this process")
    metrics.flush()  # this process's figures up to now; the others' are at most FLUSH_SECONDS old
    registry = CollectorRegistry()
    if metrics.directory:
        forget_dead_processes(metrics.directory)
        MultiProcessCollector(registry, path=metrics.directory)
    else:
        registry.register(_Families(REGISTRY.collect))
    families = list(extra_families)
    registry.register(_Families(lambda: families))
    return generate_latest(registry), CONTENT_TYPE_LATEST


# --- taskstore serve ---------------------------------------------------------------------------


@contextmanager
def multiprocess_directory() -> Iterator[str]:
    """For ``taskstore serve``, before anything counts and before gunicorn forks: the directory
    every worker writes its figures to. ``PROMETHEUS_MULTIPROC_DIR`` when it is set (created if
    missing, never emptied: that is the operator's, as is emptying it between starts); otherwise
    a fresh private directory (in ``/dev/shm`` when there is one), removed when the server stops."""
    given = os.environ.get(MULTIPROC_ENV)
    if given:
        os.makedirs(given, exist_ok=True)
        yield given
        return
    # In memory where there is a tmpfs: each count is a write to a memory-mapped file, which on a
    # disk the kernel would keep writing back. 0700: only this user reads the figures.
    shared_memory = "/dev/shm"
    in_memory = os.path.isdir(shared_memory) and os.access(shared_memory, os.W_OK | os.X_OK)
    path = tempfile.mkdtemp(prefix="taskstore-metrics-", dir=shared_memory if in_memory else None)
    os.environ[MULTIPROC_ENV] = path
    owner = os.getpid()
    try:
        yield path
    finally:
        if os.getpid() == owner:  # gunicorn's workers leave through this block too: only the arbiter removes it
            os.environ.pop(MULTIPROC_ENV, None)
            shutil.rmtree(path, ignore_errors=True)


def forget_dead_processes(directory: str) -> None:
    """The live gauges (the pool) of a process that has exited stop counting; its counters stay,
    so that totals never go backwards. A process's gauge files end in its pid."""
    from prometheus_client import multiprocess

    pids = {name.rsplit("_", 1)[-1].removesuffix(".db") for name in os.listdir(directory)
            if name.startswith("gauge_live")}
    for pid in pids:
        if pid.isdigit() and not _alive(int(pid)):
            multiprocess.mark_process_dead(int(pid), directory)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process of that pid: alive
        return True
    return True
