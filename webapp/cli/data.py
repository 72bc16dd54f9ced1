"""The data commands: worker tokens, assets, clearing runs, garbage collection and purging,
export and import, demo data. Long work shows progress in a terminal (one summary line
otherwise) and stops between batches on Ctrl-C, saying how far it got."""

from __future__ import annotations

import re
import sys
import time
from datetime import timedelta

import click
from flask import current_app
from flask.cli import with_appcontext

from .. import clean_runs, store
from ..transactions import committed
from .access import _when


@click.command("token")
@click.argument("ti_id", required=False)
@click.option("--watcher", help="A token for this named watcher instead: asset keys only, writes recorded as its.")
@with_appcontext
def token_command(ti_id: str | None, watcher: str | None) -> None:
    """Issue a worker token for a task instance (or --watcher NAME); the token is alone on the last line."""
    from .. import runs
    from ..auth import tokens

    if (ti_id is None) == (watcher is None):
        raise click.UsageError("give a task instance id or --watcher NAME (one of them)")
    if watcher is not None:
        token, expires_at = tokens.issue_for_watcher(watcher)
        click.echo(f"Token for watcher {watcher!r}, valid until {expires_at.isoformat()}:")
    else:
        ti = runs.get_task_instance_by_id(store.parse_ti_id(ti_id))
        token, expires_at = tokens.issue(ti.id)
        click.echo(f"Token for {ti.dag_id}/{ti.run_id}/{ti.task_id}[{ti.map_index}], "
                   f"valid until {expires_at.isoformat()}:")
    click.echo(token)


@click.group("assets", help="Manage assets, whose keys every task and watcher that uses them shares.")
def assets_group() -> None:
    pass


@assets_group.command("list")
@click.option("--name-pattern", help="Only assets whose name contains this (ignoring case).")
@click.option("--uri-pattern", help="Only assets whose URI contains this (ignoring case).")
@with_appcontext
def list_assets(name_pattern: str | None, uri_pattern: str | None) -> None:
    """Every asset: id, name, URI, group, keys, last write."""
    from .. import assets
    from ..auth.name_patterns import EVERYTHING

    click.echo("id\tname\turi\tgroup\tkeys\tlast write")
    offset = 0
    while True:
        rows, total = assets.listing(limit=1000, offset=offset, reader_dags=EVERYTHING, name_pattern=name_pattern,
                                     uri_pattern=uri_pattern)
        for row in rows:
            click.echo("\t".join((str(row.asset.id), row.asset.name, row.asset.uri, row.asset.group_name,
                                  str(row.key_count), _when(row.last_write))))
        offset += len(rows)
        if not rows or offset >= total:
            return


@assets_group.command("create")
@click.argument("name")
@click.option("--uri", help="The asset's URI (default: the name).")
@click.option("--group", default="", help="The asset's group.")
@with_appcontext
def create_asset(name: str, uri: str | None, group: str) -> None:
    """Register an asset; its id is alone on the last line."""
    from .. import assets

    asset = committed(lambda: assets.create(name, uri if uri is not None else name, group))
    click.echo(f"Created asset {asset.name!r} ({asset.uri}):")
    click.echo(str(asset.id))


@assets_group.command("delete")
@click.argument("asset_id", type=int)
@with_appcontext
def delete_asset(asset_id: int) -> None:
    """Delete an asset and its keys."""
    from .. import assets

    click.echo(f"Deleted asset {asset_id} and its {committed(lambda: assets.delete_asset(asset_id))} keys")


AGE = re.compile(r"(\d+)\s*([smhdw])")
AGE_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days", "w": "weeks"}


def _parse_age(_ctx, _param, raw: str | None) -> timedelta | None:
    """An age like 90d, 12h, 2w, 30m or 45s."""
    if raw is None:
        return None
    match = AGE.fullmatch(raw.strip())
    if not match or int(match.group(1)) == 0:
        raise click.BadParameter(f"{raw!r} is not an age such as 90d, 12h, 2w, 30m or 45s")
    return timedelta(**{AGE_UNITS[match.group(2)]: int(match.group(1))})


class Progress:
    """Long work's progress: on a terminal, a bar on stderr with the count, the rate and the time
    left (when the total is known); elsewhere (cron, CI) nothing until the command's one summary
    line. Ctrl-C between (or during) batches stops the work: each batch is its own transaction,
    so the one in progress rolls back, and the command says how far it got."""

    def __init__(self, label: str, total: int | None = None, unit: str = "rows"):
        self.label, self.unit, self.done, self.batches = label, unit, 0, 0
        self.started = time.perf_counter()  # its own clock: the pacing below reads monotonic()
        self.bar = None
        if sys.stderr.isatty():
            self.bar = click.progressbar(length=total, label=label, file=sys.stderr, show_pos=True,
                                         show_eta=total is not None, item_show_func=lambda _item: self.rate())

    def rate(self) -> str:
        seconds = time.perf_counter() - self.started
        return f"{self.done / seconds:,.0f} {self.unit}/s" if seconds > 0 else ""

    def advance(self, count: int) -> None:
        self.done += count
        self.batches += 1
        if self.bar is not None:
            self.bar.update(count)

    def __enter__(self) -> Progress:
        if self.bar is not None:
            self.bar.__enter__()
        return self

    def __exit__(self, kind, error, traceback) -> bool:
        if self.bar is not None:
            self.bar.__exit__(kind, error, traceback)
        if kind is KeyboardInterrupt:
            click.echo(f"Interrupted: {self.done:,} {self.unit} done in {self.batches} batches; the batch in progress "
                       "was rolled back, nothing is half-done. Run the command again to go on.", err=True)
            raise SystemExit(130)
        return False


def _paced(batches, settings, progress: Progress) -> tuple[int, int]:
    """Run batches of work with clean's pause after each; (total, batch count)."""
    started = time.monotonic()
    for done in batches:
        progress.advance(done)
        # Without a pause, clean took a core and the write lock to itself: on 2 cores the
        # workers' p99 went to 5-7x its idle value while it ran (bench/RESULTS.md).
        time.sleep((time.monotonic() - started) * settings.cleanup_pause_ratio)
        started = time.monotonic()
    return progress.done, progress.batches


@click.command("clean")
@click.option("--dry-run", is_flag=True, help="List what would be deleted instead of deleting it.")
@click.option("--runs-older-than", "runs_older_than", callback=_parse_age, metavar="AGE",
              help="Instead: delete runs with no activity for AGE (90d, 12h, 2w), with their task instances, "
                   "tries, keys and history.")
@with_appcontext
def clean_command(dry_run: bool, runs_older_than: timedelta | None) -> None:
    """Delete keys whose expiry has passed (or, with --runs-older-than, old runs), in paced batches."""
    settings = current_app.config["TASKSTORE"]
    if runs_older_than is not None:
        _purge_runs(runs_older_than, dry_run, settings)
        return
    if dry_run:
        count = 0
        for row in store.list_expired():
            count += 1
            labels = "\t".join(str(value) for value in row[1:-2])
            click.echo(f"{labels}\t{row.key}\t{row.expires_at.isoformat()}")
        click.echo(f"{count} expired keys would be deleted")
        return
    batch_size = settings.cleanup_batch_size
    started = time.monotonic()
    with Progress("Deleting expired keys", store.count_expired(), "keys") as progress:
        total, batches = _paced(store.delete_expired(batch_size=batch_size), settings, progress)
    orphans = sum(store.delete_orphaned_asset_keys(batch_size=batch_size))
    clean_runs.record(clean_runs.EXPIRED_KEYS, total + orphans, time.monotonic() - started)
    click.echo(f"Deleted {total} expired keys in {batches} batches of at most {batch_size}"
               + (f", and {orphans} keys of deleted assets" if orphans else ""))


def _purge_runs(age: timedelta, dry_run: bool, settings) -> None:
    from .. import lifecycle
    from ..models import utcnow

    cutoff = utcnow() - age
    if dry_run:
        count = 0
        for row in lifecycle.runs_to_purge(cutoff):
            count += 1
            click.echo(f"{row.dag_id}\t{row.run_id}\t{row.state}\t{row.created_at.isoformat()}")
        click.echo(f"{count} runs with no activity since {cutoff.isoformat()} would be deleted")
        return
    # A run's batch deletes its task instances and keys too: batches of runs are a tenth of clean's.
    batch_size = max(1, settings.cleanup_batch_size // 10)
    started = time.monotonic()
    with Progress("Deleting old runs", lifecycle.count_runs_to_purge(cutoff), "runs") as progress:
        total, batches = _paced(lifecycle.purge_runs(cutoff, batch_size=batch_size), settings, progress)
    clean_runs.record(clean_runs.OLD_RUNS, total, time.monotonic() - started)
    click.echo(f"Deleted {total} runs with no activity since {cutoff.isoformat()} (with their task instances, "
               f"keys and history) in {batches} batches of at most {batch_size}")


@click.group("runs", help="DAG runs: clear task instances so their next try starts over.")
def runs_group() -> None:
    pass


@runs_group.command("clear")
@click.argument("dag_id")
@click.argument("run_id")
@click.option("--task", "task_ids", multiple=True, help="Only this task (repeatable; default: every task).")
@click.option("--map-index", "map_indexes", multiple=True, type=int, help="Only this map index (repeatable).")
@click.option("--keep-task-state", is_flag=True, help="Keep the keys (by default clearing discards them).")
@with_appcontext
def clear_run(dag_id: str, run_id: str, task_ids: tuple[str, ...], map_indexes: tuple[int, ...],
              keep_task_state: bool) -> None:
    """Reset task instances of a run to state none: their next try starts over."""
    from .. import lifecycle

    def clear():
        done = lifecycle.clear(dag_id, run_id, task_ids=list(task_ids) or None, map_indexes=list(map_indexes) or None,
                               keep_task_state=keep_task_state, actor="cli")
        return len(done.task_instances), done.keys_discarded

    cleared, discarded = committed(clear)
    click.echo(f"Cleared {cleared} task instances of {dag_id}/{run_id}; "
               + ("their keys were kept" if keep_task_state else f"{discarded} keys discarded"))


@click.command("demo-data")
@with_appcontext
def demo_data_command() -> None:
    """Load realistic demo data: several DAGs, runs in different states, mapped tasks, retries."""
    from .. import demo

    with Progress("Loading demo data", None, "runs") as progress:
        created = committed(lambda: demo.load(on_run=progress.advance))
    click.echo(f"Loaded {created.runs} DAG runs, {created.task_instances} task instances, {created.keys} keys")


@click.command("export")
@click.option("--dag", "dag_pattern", metavar="PATTERN", help="Only DAGs matching this pattern (etl_*, ml_?); "
              "assets and their keys are always exported.")
@click.option("--with-credentials", is_flag=True, help="Also people (password hashes), API keys (digests) and "
              "the audit log: for moving a whole deployment.")
@with_appcontext
def export_command(dag_pattern: str | None, with_credentials: bool) -> None:
    """Write runs, task instances and their tries, keys, assets and history as JSON lines to stdout."""
    from .. import transfer

    with Progress("Exporting", None, "records") as progress:
        for line in transfer.export(dag_pattern=dag_pattern, credentials=with_credentials):
            click.echo(line)
            progress.done += 1
            if progress.bar is not None and progress.done % 1000 == 0:
                progress.bar.update(1000)
    click.echo(f"Exported {progress.done - 1:,} records", err=True)


@click.command("import")
@click.argument("dump", type=click.File("r", encoding="utf-8"))
@with_appcontext
def import_command(dump) -> None:
    """Load a dump (taskstore export) into this database, in batches; what is there already is
    left as it is, so importing twice changes nothing."""
    from .. import transfer

    with Progress("Importing", None, "records") as progress:
        result = transfer.Importer(on_batch=progress.advance).load(dump)
    added = ", ".join(f"{count:,} {kind}" for kind, count in result.added.items() if count) or "nothing"
    click.echo(f"Imported {added}; {sum(result.present.values()):,} records were there already")

