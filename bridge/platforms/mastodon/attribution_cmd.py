"""`bridge attribution`: let a Mastodon account be credited as the writer on its blog's link cards."""

from __future__ import annotations

import click


@click.command()
@click.option("--account", "account_name", required=True, metavar="NAME",
              help="The Mastodon account to credit (its token needs the scope write:accounts).")
@click.pass_obj
def attribution(obj, account_name: str) -> int:
    """Add the domains of the account's feeds' articles to its attribution domains (Mastodon 4.4+), so that link
    cards of those articles show the account as their writer. Changes the profile; `bridge doctor` only looks."""
    from bridge.cli import EXIT_FAILURE, EXIT_OK
    from bridge.errors import ConfigError
    from bridge.platforms.mastodon.attribution import CREATOR_META, add_attribution_domains, latest_pages, meta_tag

    config = obj.load_config()
    account = config.accounts.get(account_name)
    if account is None or account.type != "mastodon":
        mastodon = [name for name, entry in config.accounts.items() if entry.type == "mastodon"]
        raise ConfigError("--account", f"no Mastodon account named {account_name!r}",
                          "Mastodon accounts in the config: " + (", ".join(mastodon) or "none"))
    pages = latest_pages(config, account_name)
    for page in pages:
        if page.problem:
            click.echo(f"feed {page.feed}: could not read its newest article ({page.problem})", err=True)
    domains = list(dict.fromkeys(page.domain for page in pages if page.domain))
    if not domains:
        click.echo(f"no article page of a feed posting to {account_name} could be read: nothing to add", err=True)
        return EXIT_FAILURE
    settings, added = add_attribution_domains(config, account_name, domains)
    if added:
        click.echo(f"account {account_name} ({settings.handle}) now allows {', '.join(added)} to credit it")
    else:
        click.echo(f"account {account_name} ({settings.handle}) already allows {', '.join(domains)} to credit it")
    for page in pages:
        if page.url and page.creator is None:
            click.echo(f"{page.url} has no <meta name=\"{CREATOR_META}\">: add {meta_tag(settings.handle)} to the "
                       f"<head> of your site's article template", err=True)
    return EXIT_OK


def command() -> click.Command:
    """Platform.commands: `bridge attribution`."""
    return attribution
