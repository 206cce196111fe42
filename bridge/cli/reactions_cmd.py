"""`bridge reactions ...` and `bridge syndication`: the way back (bridge.reactions, docs/reactions.md)."""

from __future__ import annotations

import json
import time

import click

from bridge.cli import EXIT_FAILURE, EXIT_OK, CliContext


@click.group(invoke_without_command=True)
@click.option("--entry", "entry", metavar="URL", help="Only this entry (its permalink).")
@click.option("--json", "as_json", is_flag=True, help="Print the comments documents as JSON.")
@click.pass_context
def reactions(ctx: click.Context, entry: str | None, as_json: bool) -> int:
    """List the likes, reposts and replies each posted entry got, as the comments documents show them.

    Subcommands read them anew (refresh) and keep replies or people off your site (hide, block).
    """
    if ctx.invoked_subcommand is not None:
        return EXIT_OK
    from bridge.reactions.publish import comments_documents
    from bridge.state import open_state

    obj: CliContext = ctx.obj
    config = obj.load_config()
    with open_state(config, "readonly") as state:
        documents = comments_documents(config, state, entry_link=entry)
    if as_json:
        click.echo(json.dumps(documents, indent=2, ensure_ascii=False))
        return EXIT_OK
    from bridge.reactions.document import counts_line

    if not documents:
        click.echo("no posted entries" + (f" with the permalink {entry}" if entry else ""))
    for link, document in documents.items():
        click.echo(f"{link}\n  {counts_line(document['counts'])}" + (f" (read {document['updated_at']})" if document["updated_at"] else " (not read yet)"))
        for post in document["posts"]:
            click.echo(f"  {post['platform_name']}: {post['url'] or '-'}")
        _echo_replies(document["replies"], 2)
    return EXIT_OK


def _echo_replies(replies: list[dict], indent: int) -> None:
    for reply in replies:
        text = " ".join(reply["text"].split())
        click.echo(" " * indent + f"- {reply['author']['name']} (@{reply['author']['handle']}) {reply['url'] or ''}")
        click.echo(" " * (indent + 2) + (text[:200] + ("…" if len(text) > 200 else "")))
        _echo_replies(reply["replies"], indent + 2)


@reactions.command()
@click.option("--entry", "entry", metavar="URL", help="Read this entry's posts now, due or not.")
@click.pass_obj
def refresh(obj: CliContext, entry: str | None) -> int:
    """Read the reactions that are due (or one entry's), then rewrite the syndication file and comments."""
    from bridge.reactions.publish import publish_all
    from bridge.reactions.refresh import Refresher
    from bridge.state import open_state

    config = obj.load_config()
    obj.setup_logging(config)
    # Safe beside a running service: each post's read is one transaction of its own.
    with open_state(config, "shared") as state:
        report = Refresher(config, state).refresh(entry_link=entry)
        published = publish_all(config, state)
    for line in report.failed:
        click.echo(f"could not read: {line}", err=True)
    click.echo(f"read {report.read} post(s), {report.gone} deleted, {len(report.failed)} failed; "
               f"{published.documents} comments document(s), {len(published.written)} file(s) changed")
    return EXIT_FAILURE if report.failed else EXIT_OK


def _mark(obj: CliContext, change, what: str) -> int:
    from bridge.reactions.publish import publish_all
    from bridge.state import open_state

    config = obj.load_config()
    with open_state(config, "shared") as state:
        changed = change(state)
        published = publish_all(config, state)
    click.echo(f"{what}" + ("" if changed else " (already so)") + f"; {len(published.written)} file(s) rewritten")
    return EXIT_OK


def _reply_url(url: str) -> str:
    from bridge.reactions.sanitize import safe_url

    if safe_url(url) is None:
        raise click.BadParameter(f"{url!r} is not a reply's address; copy it from `bridge reactions` (https://...)",
                                 param_hint="URL")
    return url


def _handle(handle: str) -> str:
    from bridge.reactions.conversation import normalize_handle

    value = normalize_handle(handle)
    if not value or any(char.isspace() for char in value):
        raise click.BadParameter(f"{handle!r} is not a handle; write it like @alice@example.social or alice.bsky.social",
                                 param_hint="HANDLE")
    return value


@reactions.command()
@click.argument("url")
@click.pass_obj
def hide(obj: CliContext, url: str) -> int:
    """Keep one reply (its URL, as `bridge reactions` lists it) off your site, and the replies below it."""
    url = _reply_url(url)
    return _mark(obj, lambda state: _warn_unknown(state, url) or state.set_reply_hidden(url, True, time.time()),
                 f"hidden: {url}")


def _warn_unknown(state, url: str) -> None:
    if state.find_reply(url) is None:
        click.echo(f"note: no reply with the address {url} has been read yet; it will be hidden when it is", err=True)


@reactions.command()
@click.argument("url")
@click.pass_obj
def unhide(obj: CliContext, url: str) -> int:
    """Show a hidden reply again."""
    url = _reply_url(url)
    return _mark(obj, lambda state: state.set_reply_hidden(url, False, time.time()), f"shown again: {url}")


@reactions.command()
@click.argument("handle")
@click.pass_obj
def block(obj: CliContext, handle: str) -> int:
    """Keep everything one person writes off your site (@user@server, a Bluesky handle, a Nostr npub)."""
    handle = _handle(handle)
    return _mark(obj, lambda state: state.set_author_blocked(handle, True, time.time()), f"blocked: {handle}")


@reactions.command()
@click.argument("handle")
@click.pass_obj
def unblock(obj: CliContext, handle: str) -> int:
    """Show a blocked person's replies again."""
    handle = _handle(handle)
    return _mark(obj, lambda state: state.set_author_blocked(handle, False, time.time()), f"unblocked: {handle}")


@click.command()
@click.option("--feed", "feed", metavar="NAME", help="Only this feed's entries.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON keyed by permalink (the syndication file's content).")
@click.pass_obj
def syndication(obj: CliContext, feed: str | None, as_json: bool) -> int:
    """For each posted entry: its permalink and its posts on each network (platform, account, URL)."""
    from bridge.errors import ConfigError
    from bridge.reactions.publish import syndication_data
    from bridge.state import open_state

    config = obj.load_config()
    if feed is not None and config.find_feed(feed) is None:
        raise ConfigError("--feed", f"no feed named {feed!r}", "feeds in the config: " + ", ".join(f.name for f in config.feeds))
    with open_state(config, "readonly") as state:
        data = syndication_data(config, state, feed)
    if as_json:
        click.echo(json.dumps(data, indent=2, ensure_ascii=False))
        return EXIT_OK
    for link, item in data.items():
        click.echo(link)
        for post in item["posts"]:
            click.echo(f"  {post['platform']} {post['account']} {post['url'] or post['id']}")
    if not data:
        click.echo("no posted entries yet")
    return EXIT_OK
