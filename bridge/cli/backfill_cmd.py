"""The `bridge backfill` command: plan, queue, then deliver with a progress display until the queue is empty."""

from __future__ import annotations

import sys
import time
from datetime import timezone

import click

from bridge.config import MAX_DURATION, SettingError, bounded_duration
from bridge.errors import ConfigError, StateLockedError

EXIT_OK, EXIT_FAILURE = 0, 1


def run_backfill(obj, feed_name: str, *, since, limit, pace: str, oldest_first: bool, dry_run: bool, cancel: bool) -> int:
    from bridge.backfill import plan_backfill, queue_backfill
    from bridge.pipeline import Poller
    from bridge.state import open_state

    try:
        pace_seconds = bounded_duration(pace, 0.0, MAX_DURATION)
    except SettingError as exc:
        raise ConfigError("--pace", str(exc), exc.fix) from None
    config = obj.load_config()
    obj.setup_logging(config)
    feed = config.feed(feed_name)
    if since is not None and since.tzinfo is None:
        since = since.replace(tzinfo=timezone.utc)
    service_running = False
    if dry_run:
        state = open_state(config, "dry_run")
    else:
        try:
            state = open_state(config)
        except StateLockedError:
            # The service holds the state: queue beside it (safe: one transaction) and let it do the posting.
            state = open_state(config, "shared")
            service_running = True
    with state:
        if cancel:
            dropped = state.cancel_pending(feed=feed.name, kind="backfill")
            click.echo(f"cancelled {dropped} queued backfill post(s) of {feed.name}")
            return EXIT_OK
        if state.get_feed(feed.name) is None or not state.get_feed(feed.name).baseline_done:
            if service_running:
                click.echo(f"{feed.name} has not been polled yet; the running service will poll it first — try again then")
                return EXIT_FAILURE
            Poller(config, state).poll([feed.name])
        now = time.time()
        planned = plan_backfill(config, state, feed, now=now, since=since, limit=limit, pace=pace_seconds,
                                oldest_first=oldest_first)
        entries = len({item.entry_id for item in planned})
        if dry_run:
            click.echo(f"would queue {len(planned)} post(s) of {entries} entr{'y' if entries == 1 else 'ies'}, "
                       f"one entry every {pace}:")
            for item in planned:
                when = time.strftime("%Y-%m-%d %H:%M", time.localtime(item.not_before))
                click.echo(f"  {when}  {item.account}: {item.entry.title or '(untitled)'} <{item.entry.link}>")
            return EXIT_OK
        queued = queue_backfill(config, state, feed, planned, now=now)
        click.echo(f"queued {queued} post(s) of {entries} entr{'y' if entries == 1 else 'ies'} from {feed.name}, "
                   f"one entry every {pace}")
        if service_running:
            click.echo("the running bridge service will post them; watch with `bridge status`")
            return EXIT_OK
        return _deliver_until_done(config, state, feed)


def _remaining(state, feed) -> list:
    return [row for row in state.deliveries(feed=feed.name) if row.kind == "backfill" and row.state in ("pending", "sending")]


def _deliver_until_done(config, state, feed) -> int:
    from bridge.wiring import build_deliverer

    deliverer = build_deliverer(config, state)
    total = len(_remaining(state, feed))
    done = 0
    interactive = sys.stdout.isatty()
    progress = None
    if interactive and total:
        from rich.progress import Progress

        progress = Progress(transient=False)
        progress.start()
        task = progress.add_task(f"backfill {feed.name}", total=total)
    try:
        while True:
            report = deliverer.deliver_due(accounts=list(feed.accounts))
            for account in report.accounts:
                for url in account.posted:
                    done += 1
                    if progress is not None:
                        progress.update(task, advance=1, description=f"backfill {feed.name}: {url}")
                    else:
                        click.echo(f"[{done}/{total}] {account.account}: posted {url}")
            remaining = _remaining(state, feed)
            if not remaining:
                break
            # A paused account, or one an unexpected error stopped, would hold the loop forever: stop and say so.
            stuck = [a for a in report.accounts if (a.paused or a.error) and any(r.account == a.account for r in remaining)]
            if stuck and all(row.account in {a.account for a in stuck} for row in remaining):
                why = f"is paused: {stuck[0].paused}" if stuck[0].paused else f"stopped by an unexpected error: {stuck[0].error}"
                click.echo(f"account {stuck[0].account} {why}", err=True)
                click.echo(f"{len(remaining)} post(s) stay queued; after the fix run the same command again", err=True)
                return EXIT_FAILURE
            wake = min(max(row.next_attempt_at, deliverer.next_allowed_at(row.account)) for row in remaining)
            time.sleep(min(max(wake - time.time(), 0.2), 5.0))
    except KeyboardInterrupt:
        left = len(_remaining(state, feed))
        click.echo(f"\nstopped: {left} post(s) left in the queue. Resume: bridge backfill --feed {feed.name} "
                   f"(or let `bridge run` post them). Cancel: bridge backfill --feed {feed.name} --cancel", err=True)
        return EXIT_FAILURE
    finally:
        if progress is not None:
            progress.stop()
        deliverer.close()
    failed = [row for row in state.deliveries(feed=feed.name, state="failed") if row.kind == "backfill"]
    click.echo(f"backfill of {feed.name} done: {done} posted, {len(failed)} failed"
               + (" (see `bridge status`; `bridge retry` puts them back in the queue)" if failed else ""))
    return EXIT_FAILURE if failed else EXIT_OK
