"""The command line: parses arguments, wires objects, calls the pipeline — and is the only place that turns
errors into exit codes: 0 ok, 1 runtime failure, 2 usage or configuration error.

Heavy modules are imported inside the commands, so `bridge --help` stays fast.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path

import click

from bridge import __version__

EXIT_OK, EXIT_FAILURE, EXIT_CONFIG = 0, 1, 2


@dataclass
class CliContext:
    config_path: Path | None
    log_format: str | None
    verbose: bool

    def load_config(self):
        from bridge.config import load_config

        return load_config(self.config_path)

    def setup_logging(self, config=None) -> None:
        from bridge.logs import setup_logging

        fmt = self.log_format or (config.bridge.log_format if config else "text")
        level = "debug" if self.verbose else (config.bridge.log_level if config else "info")
        setup_logging(fmt, level)


class _Commands(click.Group):
    """The commands of their own modules (preview, login, alerts, reactions, each platform's) are registered when
    one of them is named or the list is shown (--help): a `bridge poll` run by a timer loads none of them."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        _register_optional_commands()
        return super().list_commands(ctx)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name not in self.commands:
            _register_optional_commands()
        return super().get_command(ctx, cmd_name)


@click.group(cls=_Commands, context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(__version__, "--version", prog_name="bridge")
@click.option(
    "--config",
    "config_path",
    type=click.Path(dir_okay=False, path_type=Path),
    envvar="BRIDGE_CONFIG",
    help="Config file (TOML). Default: $BRIDGE_CONFIG, else $CONFIGURATION_DIRECTORY/config.toml, "
    "else ~/.config/bridge/config.toml.",
)
@click.option("--log-format", type=click.Choice(["text", "json"]), default=None, help="Log lines for people (text) or machines (json).")
@click.option("-v", "--verbose", is_flag=True, help="Log debug details.")
@click.pass_context
def cli(ctx: click.Context, config_path: Path | None, log_format: str | None, verbose: bool) -> None:
    """bridge posts each new entry of your blog's feeds, exactly once, to your Mastodon, Bluesky and Nostr accounts.

    Start with `bridge check-config`, then `bridge poll --dry-run` to see what would be posted.
    """
    ctx.obj = CliContext(config_path=config_path, log_format=log_format, verbose=verbose)


@cli.command("check-config")
@click.pass_obj
def check_config(obj: CliContext) -> int:
    """Validate the config file and find every credential, without touching the network."""
    from bridge.config import resolve_secret, world_readable_secret_files

    from bridge.web.access import resolve_access

    config = obj.load_config()
    for account in config.accounts:
        resolve_secret(config, account)
    from bridge.alerts.destinations import check_destinations

    check_destinations(config)  # every alert destination and the ping URL can be read and used
    resolve_access(config)  # the status page's address and token
    for path in world_readable_secret_files(config):
        click.echo(f"warning: {path} can be read by other users; run: chmod 600 {path}", err=True)
    from bridge.state.opening import describe_store

    click.echo(
        f"config OK: {config.path} — {len(config.feeds)} feed(s), {len(config.accounts)} account(s); "
        f"state: {describe_store(config)}"
    )
    return EXIT_OK


@cli.command()
@click.option("--feed", "feeds", multiple=True, metavar="NAME", help="Poll only this feed, due or not (repeatable).")
@click.option("--dry-run", is_flag=True, help="Write nothing and post nothing; list what each account would get.")
@click.pass_obj
def poll(obj: CliContext, feeds: tuple[str, ...], dry_run: bool) -> int:
    """Poll the due feeds once, then send the due posts: the one-shot pass for cron and systemd timers. Then tells
    the [alerts] destinations what opened or cleared, and pings the ping_url."""
    from bridge.pipeline import Poller
    from bridge.state import open_state

    config = obj.load_config()
    obj.setup_logging(config)
    state = open_state(config, "dry_run" if dry_run else "writer")
    alerts = None
    if not dry_run:
        from bridge.alerts.oneshot import RunAlerts

        alerts = RunAlerts(config)
        alerts.started()
    published = True
    with state:
        try:
            poller = Poller(config, state)
            report = poller.poll(list(feeds) or None)
            from bridge.wiring import follow_deletes

            deletes = follow_deletes(config, state, dry_run=dry_run)
            if dry_run:
                _print_dry_run(config, state, report)
                delivered = None
            else:
                from bridge.wiring import build_deliverer

                deliverer = build_deliverer(config, state)
                try:
                    delivered = deliverer.deliver_due()
                finally:
                    deliverer.close()
                published = _publish_site_files(config, state)
        except Exception as exc:
            if alerts is not None:
                alerts.pinger.fail(f"bridge poll stopped: {exc}")
            raise
        if alerts is not None:
            alerts.finished(state, _cycle_failure(report))
    for outcome in report.feeds:
        if outcome.notice:
            click.echo(outcome.notice, err=True)
        if outcome.deletes_warning:
            click.echo(f"feed {outcome.feed}: {outcome.deletes_warning}", err=True)
    for line in deletes.would_delete:
        click.echo(f"would delete {line}: its entry was deleted from the blog")
    for line in deletes.deleted:
        click.echo(f"deleted {line}: its entry was deleted from the blog")
    for line in deletes.errors:
        click.echo(f"cannot delete {line} (tried again on the next run)", err=True)
    polled = len(report.feeds)
    failed = len(report.failed)
    new = sum(outcome.new_entries for outcome in report.feeds)
    line = f"polled {polled} feed(s): {new} new entr{'y' if new == 1 else 'ies'}, {failed} failed"
    if delivered is None:
        line += " (dry run: nothing written, nothing posted)"
    else:
        line += f"; posted {delivered.posted}, failed {delivered.failed}"
        from bridge.redact import redact

        held = sum(account.unknown for account in delivered.accounts)
        if held:
            line += f", held {held} (outcome unknown: see `bridge status`)"
        for account in delivered.accounts:
            if account.paused:  # a server's words, or a reason stored raw by an older version
                click.echo(f"account {account.account} is paused: {redact(account.paused)}", err=True)
            if account.error:
                click.echo(f"account {account.account}: delivery stopped by an unexpected error: {redact(account.error)}", err=True)
    click.echo(line)
    troubled = delivered and (delivered.failed or any(a.paused or a.unknown or a.error for a in delivered.accounts))
    return EXIT_FAILURE if failed or troubled or (delivered is not None and not published) else EXIT_OK


def _publish_site_files(config, state) -> bool:
    """The syndication file and comments documents, brought up to date with what was just posted (no network)."""
    if config.syndication_path() is None and config.comments_path() is None:
        return True
    from bridge.reactions.files import PublishError
    from bridge.reactions.publish import publish_all

    try:
        publish_all(config, state)
    except PublishError as exc:
        click.echo(f"error: {exc}", err=True)
        return False
    return True


def _cycle_failure(report) -> str | None:
    """Why a poll run failed as a whole, for the dead-man's switch: no feed could be read. A feed failing among
    others, a paused account or a refused post are problems the alerts tell about, not a dead bridge."""
    if not report.feeds or len(report.failed) < len(report.feeds):
        return None
    return "no feed could be read:\n" + "\n".join(f"feed {outcome.feed}: {outcome.error}" for outcome in report.failed)


def _print_dry_run(config, state, report) -> None:
    import time
    from datetime import UTC, datetime

    for account in config.accounts:
        pending = [row for row in state.deliveries(account=account) if row.state in ("pending", "sending")]
        click.echo(f"{account}: {len(pending)} post(s) would be sent")
        for row in pending:
            _, entry, _ = state.get_entry(row.entry_id)
            held = ""
            if row.attempts == 0 and row.next_attempt_at > time.time():  # a grace period (`hold`) or backfill pace
                held = f" (not before {datetime.fromtimestamp(row.next_attempt_at, UTC):%Y-%m-%d %H:%M:%S} UTC)"
            click.echo(f"  - [{row.feed}] {entry.title or '(untitled)'} <{entry.link or entry.key}>{held}")
        filtered = [(outcome.feed, *item) for outcome in report.feeds for item in outcome.filtered_out if item[0] == account]
        if filtered:
            click.echo(f"{account}: {len(filtered)} new entr{'y' if len(filtered) == 1 else 'ies'} left out by filters")
        for feed, _, what, reason in filtered:
            click.echo(f"  - [{feed}] {what}: {reason}")


@cli.command()
@click.option("--offline", is_flag=True,
              help="Skip the checks that need the network (feeds, accounts, clocks); credentials are still checked.")
@click.pass_obj
def doctor(obj: CliContext, offline: bool) -> int:
    """Check the config, the state, every feed and every account; say what to fix. Exit 0 only when all is well."""
    from bridge.doctor import run_checks

    config = obj.load_config()
    checks = run_checks(config, network=not offline)
    for check in checks:
        mark = "ok  " if check.ok else ("warn" if check.warning else "FAIL")
        line = f"{mark} {check.name}" + (f": {check.detail}" if check.detail else "")
        click.echo(line)
        if not check.ok and check.fix:
            click.echo(f"     fix: {check.fix}")
    failures = [check for check in checks if not check.ok and not check.warning]
    click.echo("all is well" if not failures else f"{len(failures)} problem(s) found")
    return EXIT_OK if not failures else EXIT_FAILURE


@cli.command()
@click.pass_obj
def run(obj: CliContext) -> int:
    """Run as a service: poll every feed on its schedule and deliver posts as they come (systemd Type=notify);
    tells the [alerts] destinations when something needs you, a stall included."""
    from bridge.daemon import Daemon
    from bridge.wiring import build_deliverer

    config = obj.load_config()
    obj.setup_logging(config)
    return Daemon(obj.config_path, deliverer_factory=build_deliverer).run()


@cli.command()
@click.option("--account", metavar="NAME", help="Only this account's failed posts.")
@click.option("--entry", metavar="KEY", help="Only this entry (its key or link).")
@click.option("--force", is_flag=True,
              help="Send posts whose outcome is unknown without first asking the server whether they exist: only "
                   "after you looked at the account and they are not there.")
@click.pass_obj
def retry(obj: CliContext, account: str | None, entry: str | None, force: bool) -> int:
    """Put failed posts, and posts held because their outcome is unknown, back in the queue; the next poll or the
    running service sends them. A post that may have gone out already is first looked for on the server."""
    import time

    from bridge.errors import ConfigError
    from bridge.state import open_state

    config = obj.load_config()
    if account and account not in config.accounts:
        raise ConfigError("--account", f"no account named {account!r}", "accounts in the config: " + ", ".join(config.accounts))
    # Safe beside a running service: it only flips failed rows back to pending.
    with open_state(config, "shared") as state:
        count = state.requeue_failed(account=account, entry_key=entry, now=time.time(), force=force)
    click.echo(f"{count} failed or held post(s) queued again" + (" (sent without a look first)" if force else ""))
    return EXIT_OK


@cli.command()
@click.option("--feed", "feed_name", required=True, metavar="NAME", help="The feed whose older entries to post.")
@click.option("--since", type=click.DateTime(["%Y-%m-%d", "%Y-%m-%dT%H:%M:%S"]), help="Only entries published on or after this date (YYYY-MM-DD).")
@click.option("--limit", type=click.IntRange(min=1), metavar="N", help="At most N entries.")
@click.option("--pace", default="10m", show_default=True, metavar="DURATION", help="Time between two posts (90s, 10m, 1h...).")
@click.option("--oldest-first", is_flag=True, help="Post the oldest entries first (default: newest first).")
@click.option("--dry-run", is_flag=True, help="List what would be posted; write and post nothing.")
@click.option("--cancel", is_flag=True, help="Drop this feed's backfill posts that are still queued.")
@click.pass_obj
def backfill(obj: CliContext, feed_name: str, since, limit: int | None, pace: str, oldest_first: bool, dry_run: bool,
             cancel: bool) -> int:
    """Post a feed's older entries, paced, through the same queue (resumable; never posts anything twice)."""
    from bridge.cli.backfill_cmd import run_backfill

    return run_backfill(obj, feed_name, since=since, limit=limit, pace=pace, oldest_first=oldest_first,
                        dry_run=dry_run, cancel=cancel)


@cli.command()
@click.option("--json", "as_json", is_flag=True, help="Print JSON for scripts.")
@click.pass_obj
def status(obj: CliContext, as_json: bool) -> int:
    """Show each feed and account: last poll, outcome, entries, queue, errors, next poll."""
    from bridge.status import collect_status, render_status_text
    from bridge.state import open_state

    config = obj.load_config()
    with open_state(config, "readonly") as state:
        report = collect_status(config, state)
    if as_json:
        import json

        click.echo(json.dumps(report, indent=2, ensure_ascii=False))
    else:
        click.echo(render_status_text(report))
    return EXIT_OK


def _register_optional_commands() -> None:
    if _optional_registered:
        return
    _optional_registered.append(True)
    from bridge.cli.alerts_cmd import alerts
    from bridge.cli.login import login
    from bridge.cli.preview import preview
    from bridge.cli.reactions_cmd import reactions, syndication
    from bridge.platforms import PLATFORMS

    cli.add_command(preview)
    cli.add_command(login)
    for entry in PLATFORMS:  # a platform's own commands (`bridge attribution` for Mastodon)
        for command in entry.commands:
            cli.add_command(command())
    cli.add_command(alerts)
    cli.add_command(reactions)
    cli.add_command(syndication)


_optional_registered: list[bool] = []


def main(argv: list[str] | None = None) -> None:
    from bridge.errors import BridgeError, ConfigError

    try:
        code = cli.main(args=argv, prog_name="bridge", standalone_mode=False)
    except click.exceptions.Abort:
        click.echo("aborted", err=True)
        code = EXIT_FAILURE
    except click.ClickException as exc:
        from bridge.redact import redact

        exc.message = redact(exc.message)  # `login` quotes the server's error, which may echo what it was sent
        exc.show()
        code = EXIT_CONFIG if isinstance(exc, click.UsageError) else exc.exit_code
    except ConfigError as exc:
        from bridge.redact import redact

        click.echo(f"config error: {redact(str(exc))}", err=True)
        code = EXIT_CONFIG
    except BridgeError as exc:
        from bridge.redact import redact

        click.echo(f"error: {redact(str(exc))}", err=True)
        code = EXIT_FAILURE
    except KeyboardInterrupt:
        click.echo("interrupted", err=True)
        code = EXIT_FAILURE
    sys.exit(code if isinstance(code, int) else EXIT_OK)
