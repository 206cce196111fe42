"""`bridge login mastodon`: get an access token through Mastodon's OAuth authorization-code flow.

    read the instance document (GET /api/v2/instance, else v1): which server software, so which scopes it needs
    to let bridge read the account's own statuses (bridge/platforms/mastodon/servers.py, own_statuses_scopes)
    -> register an app (POST /api/v1/apps, scopes write:statuses write:media + those, redirect
       urn:ietf:wg:oauth:2.0:oob)
    -> the user opens the authorize URL, approves, copies the code
    -> exchange the code (POST /oauth/token)
    -> a new 0600 file (--write-token PATH) or stdout (--print, for a systemd credential)

The token never reaches a log line, and is printed only when --print asks for it (prompts and hints go to
stderr, so stdout can be piped straight into `systemd-creds encrypt`). Errors become click exceptions here;
exit codes are the CLI's: 2 for usage, 1 for a failed exchange.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlencode, urlsplit

import click

from bridge.addresses import is_loopback
from bridge.token_file import write_private

OOB_REDIRECT = "urn:ietf:wg:oauth:2.0:oob"
WRITE_SCOPES = ("write:statuses", "write:media")
CLIENT_NAME = "bridge"
CONNECT_TIMEOUT = 10.0
READ_TIMEOUT = 30.0
TOTAL_TIMEOUT = 60.0  # one request, connecting, headers and body: a server dripping its answer cannot hang login


@click.command("mastodon")
@click.option("--instance", required=True, metavar="URL", help="Your Mastodon server, e.g. https://mastodon.social.")
@click.option("--write-token", "write_token", type=click.Path(dir_okay=False, path_type=Path), metavar="PATH",
              help="Store the token in this new file, readable by you only (0600).")
@click.option("--print", "print_token", is_flag=True,
              help="Print the token on stdout (for `systemd-creds encrypt`); everything else goes to stderr.")
@click.option("--force", is_flag=True, help="Replace the file given to --write-token if it exists.")
@click.option("--read-scopes/--no-read-scopes", default=True, show_default=True,
              help="Also ask for the scopes that let bridge read the account's own statuses (read:accounts "
                   "read:statuses on Mastodon, read on Takahē...; bridge asks the server which software it runs): "
                   "after a lost answer or a crash bridge then looks for the post it may have made instead of "
                   "holding it, and `bridge doctor` can name the account.")
@click.option("--account", "account_name", default="mastodon", show_default=True, metavar="NAME",
              help="The account's name in the config (only for the hints printed at the end).")
def mastodon(instance: str, write_token: Path | None, print_token: bool, force: bool, read_scopes: bool,
             account_name: str) -> None:
    """Get a Mastodon access token with the OAuth authorization-code flow.

    bridge registers itself as an app on your server with the scopes write:statuses write:media and those your
    server needs for reading the account's own statuses (none with --no-read-scopes), prints a link to open in
    your browser, and asks for the code the server shows once you approve. Then it stores the token in a new
    0600 file (--write-token PATH) or prints it (--print) for a systemd credential.

    Logging in with a password does not exist on Mastodon 4.4 and later. The other way to get a token is
    Preferences > Development > New application on your server, with the same scopes.
    """
    if (write_token is None) == (not print_token):
        raise click.UsageError("give either --write-token PATH (store the token in a new 0600 file) or --print")
    if write_token is not None and write_token.exists() and not force:
        raise click.BadParameter(f"{write_token} exists; pass --force to replace it", param_hint="--write-token")
    base = instance_url(instance)
    with _client() as client:
        scopes = " ".join(WRITE_SCOPES + (lookup_scopes(client, base) if read_scopes else ()))
        app = register_app(client, base, scopes)
        click.echo(f"1. Open this address in a browser where you are logged in to {base}:\n\n"
                   f"   {authorize_url(base, app.client_id, scopes)}\n\n"
                   f"2. Approve bridge ({scopes}); the server then shows an authorization code.", err=True)
        code = _read_code("3. Paste the authorization code here: ")
        token, granted = exchange_code(client, base, app, code, scopes)
    missing = set(scopes.split()) - set(granted.split())
    if missing:
        click.echo(f"warning: the server granted {granted!r}, without {' '.join(sorted(missing))}", err=True)
    if print_token:
        click.echo(token)
        click.echo(_systemd_hint(account_name, base), err=True)
        return
    assert write_token is not None
    write_private(write_token, token, force=force)
    click.echo(f"The token is in {write_token} (mode 0600). In the config:\n\n"
               f"  [accounts.{account_name}]\n  type = \"mastodon\"\n  instance = \"{base}\"\n"
               f"  access_token = {{ file = \"{write_token.resolve()}\" }}", err=True)


# --- the flow, step by step ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class App:
    client_id: str
    client_secret: str


def instance_url(value: str) -> str:
    """https://host from "host" or a URL; plain http only for a server on this machine."""
    text = value.strip().rstrip("/")
    if "://" not in text:
        text = "https://" + text
    parts = urlsplit(text)
    if parts.scheme not in ("http", "https") or not parts.hostname or parts.path or parts.query:
        raise click.BadParameter(f"{value!r} is not a server address; write it like https://mastodon.social",
                                 param_hint="--instance")
    if parts.scheme == "http" and not is_loopback(parts.hostname or ""):
        raise click.BadParameter(f"{value!r} is plain http: the token would travel unencrypted; use https://",
                                 param_hint="--instance")
    return f"{parts.scheme}://{parts.netloc}"


def lookup_scopes(client, base: str) -> tuple[str, ...]:
    """The scopes this server wants for reading the account's own statuses, from the profile its instance
    document picks; the most conservative profile's when it has none."""
    import httpx

    from bridge.platforms.mastodon.servers import CONSERVATIVE, INSTANCE_PATHS, identify

    profile = CONSERVATIVE
    for path in INSTANCE_PATHS:
        try:
            response = client.get(base + path)
        except httpx.HTTPError as exc:
            raise click.ClickException(f"cannot reach {base + path} while asking which server it is: {exc}") from None
        try:
            data = response.json() if response.status_code == 200 else None
        except ValueError:
            data = None
        if isinstance(data, dict):
            profile, _ = identify(data.get("version") if isinstance(data.get("version"), str) else None)
            break
    click.echo(f"{base} runs {profile.software if profile is not CONSERVATIVE else 'software bridge does not know'}: "
               f"asking for {' '.join(profile.own_statuses_scopes)} to read the account's own statuses", err=True)
    return profile.own_statuses_scopes


def register_app(client, base: str, scopes: str) -> App:
    data = _call(client, "POST", f"{base}/api/v1/apps", "registering bridge as an app", data={
        "client_name": CLIENT_NAME,
        "redirect_uris": OOB_REDIRECT,
        "scopes": scopes,
        "website": "https://pypi.org/project/bridge-crosspost/",
    })
    try:
        return App(client_id=str(data["client_id"]), client_secret=str(data["client_secret"]))
    except (KeyError, TypeError):
        raise click.ClickException(f"{base} answered /api/v1/apps without client credentials; is it a Mastodon server?") from None


def authorize_url(base: str, client_id: str, scopes: str) -> str:
    query = urlencode({"client_id": client_id, "scope": scopes, "redirect_uri": OOB_REDIRECT, "response_type": "code"})
    return f"{base}/oauth/authorize?{query}"


def exchange_code(client, base: str, app: App, code: str, scopes: str) -> tuple[str, str]:
    """(access token, granted scopes) for an authorization code."""
    if not code:
        raise click.ClickException("no authorization code given; run the command again")
    data = _call(client, "POST", f"{base}/oauth/token", "exchanging the code for a token", data={
        "grant_type": "authorization_code",
        "code": code,
        "client_id": app.client_id,
        "client_secret": app.client_secret,
        "redirect_uri": OOB_REDIRECT,
        "scope": scopes,
    })
    token = data.get("access_token") if isinstance(data, dict) else None
    if not token:
        raise click.ClickException(f"{base} gave no access token; run the command again")
    return str(token), str(data.get("scope") or scopes)


# --- plumbing ------------------------------------------------------------------------------------------------


def _client():
    import httpx

    from bridge import __version__
    from bridge.config import DEFAULT_USER_AGENT
    from bridge.deadline import DeadlineTransport

    return httpx.Client(timeout=httpx.Timeout(READ_TIMEOUT, connect=CONNECT_TIMEOUT), follow_redirects=False,
                        transport=DeadlineTransport(TOTAL_TIMEOUT),
                        headers={"User-Agent": DEFAULT_USER_AGENT.replace("{version}", __version__),
                                 "Accept": "application/json"})


def _call(client, method: str, url: str, doing: str, **kwargs) -> dict:
    import httpx

    try:
        response = client.request(method, url, **kwargs)
    except httpx.HTTPError as exc:
        raise click.ClickException(f"cannot reach {url} while {doing}: {exc}") from None
    try:
        data = response.json()
    except ValueError:
        data = None
    if response.status_code == 200 and isinstance(data, dict):
        return data
    raise click.ClickException(f"{doing} failed: {_explain(response.status_code, data)}")


def _explain(status: int, data) -> str:
    error = data.get("error") if isinstance(data, dict) else None
    if error == "invalid_grant":
        return ("the server did not accept the code (mistyped, already used, or older than ten minutes); "
                "run the command again")
    if error == "invalid_client":
        return "the server no longer knows the app registered a moment ago; run the command again"
    if error == "invalid_scope":
        return ("the server does not offer the scopes bridge asked for; run the command again with --no-read-scopes "
                "(bridge then holds a post whose outcome it cannot know rather than look for it)")
    if status == 429:
        return "the server's rate limit was reached (HTTP 429); wait a few minutes and try again"
    detail = data.get("error_description") or error if isinstance(data, dict) else None
    return f"HTTP {status}" + (f": {detail}" if detail else "; is this a Mastodon server?")


def _read_code(prompt: str) -> str:
    """One line from stdin, the prompt on stderr. (click.prompt writes a space to stdout, which would end up
    in front of the token when --print is piped into systemd-creds.)"""
    click.echo(prompt, err=True, nl=False)
    line = sys.stdin.readline()
    if not line:
        raise click.Abort()
    return line.strip()


def _systemd_hint(account: str, base: str) -> str:
    return (
        "\nFor an encrypted systemd credential, pipe the token straight into systemd-creds:\n\n"
        f"  bridge login mastodon --instance {base} --print | sudo systemd-creds encrypt --name={account} - "
        f"/etc/credstore.encrypted/{account}\n\n"
        f"and add to the bridge unit:  LoadCredentialEncrypted={account}:/etc/credstore.encrypted/{account}\n"
        f"(or, unencrypted: LoadCredential={account}:/path/to/a/0600/file). bridge reads "
        f"$CREDENTIALS_DIRECTORY/{account} by itself when accounts.{account}.access_token is not set."
    )


def command() -> click.Command:
    """Platform.login: `bridge login mastodon`."""
    return mastodon
