"""`bridge alerts test`: send a test alert to every destination; say which failed and why."""

from __future__ import annotations

import click


@click.group("alerts")
def alerts() -> None:
    """Alerts ([alerts] in the config): destinations that are told when something needs you."""


@alerts.command("test")
@click.pass_obj
def test(obj) -> int:
    """Send a test alert to every destination and say which failed and why (exit 1 if any did)."""
    from bridge.alerts.destinations import alert_urls
    from bridge.alerts.send import send
    from bridge.cli import EXIT_FAILURE, EXIT_OK

    config = obj.load_config()
    obj.setup_logging(config)
    urls = alert_urls(config)
    if not urls.destinations:
        click.echo("no alert destination: add destinations = [...] to [alerts] (see config.example.toml)", err=True)
        return EXIT_FAILURE
    results = send(urls.destinations, "bridge: test alert",
                   "This is a test from `bridge alerts test`: this destination works. bridge tells you here when "
                   "something needs you (a paused account, a failing feed, a post given up on, a stall).")
    for result in results:
        click.echo(f"ok   {result.destination}" if result.ok else f"FAIL {result.destination}: {result.error}")
    failed = sum(not result.ok for result in results)
    click.echo(f"{len(results) - failed} of {len(results)} destination(s) took the test alert")
    return EXIT_FAILURE if failed else EXIT_OK
