"""`bridge login threads`: the OAuth code flow of a writer's own Meta app, ending with a long-lived token.

1. The authorization window (https://threads.net/oauth/authorize) asks the writer -- a tester of their own app,
   so no app review -- for threads_basic, threads_content_publish, threads_manage_insights (the likes,
   reposts and quotes the way back shows: https://developers.facebook.com/docs/threads/insights) and
   threads_delete (deletes that follow the blog: https://developers.facebook.com/docs/threads/posts/delete-posts),
   and sends the browser to the app's redirect URI with ?code=...; the writer pastes that address (or the code).
2. POST /oauth/access_token exchanges the code for a short-lived token (one hour).
3. GET /access_token?grant_type=th_exchange_token exchanges that for a long-lived one (60 days), written to a new
   0600 file or printed for a systemd credential.
https://developers.facebook.com/documentation/threads/get-started/get-access-tokens-and-permissions and
https://developers.facebook.com/docs/threads/get-started/long-lived-tokens/
Meta sends the browser only to a redirect URI registered in the app, and its examples are all https; a page that
need not exist (https://localhost/) is enough, since the code is read from the browser's address bar. With --listen PORT bridge catches the code
itself on 127.0.0.1:PORT, for an app that lists http://localhost:PORT/ (whether Meta accepts such a URI is not
verified: docs/threads.md).
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path
from urllib.parse import parse_qs, urlencode, urlsplit

import click

from bridge.token_file import write_private
from bridge.platforms.threads.account import GRAPH_URL

AUTHORIZE_URL = "https://threads.net/oauth/authorize"
SCOPES = "threads_basic,threads_content_publish,threads_manage_insights,threads_delete"


def command() -> click.Command:
    return threads


@click.command("threads")
@click.option("--app-id", metavar="ID",
              help="Your Threads app ID (App Dashboard > App settings > Basic); default: the account's app_id.")
@click.option("--redirect-uri", default=None, metavar="URL",
              help="A redirect URI listed in your app's Threads settings [default: https://localhost/, or with "
                   "--listen http://localhost:PORT/].")
@click.option("--listen", type=click.IntRange(1, 65535), metavar="PORT",
              help="Catch the code on 127.0.0.1:PORT instead of pasting the address (if your app lists "
                   "http://localhost:PORT/ as a redirect URI).")
@click.option("--write-token", "write_token", type=click.Path(dir_okay=False, path_type=Path), metavar="PATH",
              help="Store the long-lived token in this new file (mode 0600).")
@click.option("--print", "print_token", is_flag=True, help="Print the token instead (for a systemd credential).")
@click.option("--force", is_flag=True, help="Replace the file given to --write-token if it exists.")
@click.option("--account", "account_name", default="threads", show_default=True, metavar="NAME",
              help="The account in the config: its app_id, app_secret and graph_url are used when it has them.")
@click.option("--graph-url", default=None, hidden=True)
@click.pass_context
def threads(ctx: click.Context, app_id: str | None, redirect_uri: str | None, listen: int | None,
            write_token: Path | None, print_token: bool, force: bool, account_name: str, graph_url: str | None) -> None:
    """Get a long-lived Threads token for your own Meta app. The app secret comes from the account's app_secret
    (env, file, or the systemd credential NAME-app-secret), else $THREADS_APP_SECRET, else a prompt."""
    from bridge.redact import register_secret

    if bool(write_token) == bool(print_token):
        raise click.UsageError("give either --write-token PATH (store the token in a new 0600 file) or --print")
    if write_token and write_token.exists() and not force:
        raise click.BadParameter(f"{write_token} exists; pass --force to replace it", param_hint="--write-token")
    account = configured_account(ctx, account_name)
    app_id = app_id or (account.app_id if account else None)
    if not app_id:
        raise click.UsageError(f"give --app-id, or set app_id in [accounts.{account_name}]")
    graph_url = (graph_url or (account.server_url if account else GRAPH_URL)).rstrip("/")
    app_secret = configured_app_secret(ctx, account, account_name) or os.environ.get("THREADS_APP_SECRET") \
        or click.prompt("Threads app secret", hide_input=True, err=True)
    register_secret(app_secret)
    redirect_uri = redirect_uri or (f"http://localhost:{listen}/" if listen else "https://localhost/")
    state = secrets.token_urlsafe(16)
    query = urlencode({"client_id": app_id, "redirect_uri": redirect_uri, "scope": SCOPES,
                       "response_type": "code", "state": state})
    click.echo(f"1. Open this address in a browser where you are logged in to Threads:\n\n   {AUTHORIZE_URL}?{query}\n",
               err=True)
    if listen:
        click.echo(f"2. Allow the app. The browser then comes back to {redirect_uri}, where bridge waits.", err=True)
        code = read_code(wait_for_redirect(listen), state)
    else:
        click.echo(f"2. Allow the app. The browser then goes to {redirect_uri}?code=...; paste that whole address here.",
                   err=True)
        code = read_code(click.prompt("Address (or code)", err=True), state)
    short, long_lived, expires_in = exchange(graph_url, app_id, app_secret, redirect_uri, code)
    register_secret(short)
    register_secret(long_lived)
    days = int(expires_in // 86400)
    if print_token:
        click.echo(long_lived)
        click.echo(f"The token is valid {days} days; bridge refreshes it daily and keeps the new one in its state. "
                   f"For systemd, store it in a file and add LoadCredential={account_name}:/path/to/file to the "
                   f"unit: bridge reads $CREDENTIALS_DIRECTORY/{account_name} when access_token is not set.", err=True)
        return
    write_private(write_token, long_lived, force=force)
    click.echo(f"The token is in {write_token} (mode 0600), valid {days} days; bridge refreshes it daily. In the config:"
               f'\n\n  [accounts.{account_name}]\n  type = "threads"\n  app_id = "{app_id}"\n'
               f'  access_token = {{ file = "{write_token}" }}\n\n'
               f"If bridge paused the account, `bridge resume {account_name}` after that.")


def configured_account(ctx: click.Context, account_name: str):
    """The Threads account of that name in the config, or None when there is no config or no such account."""
    from bridge.errors import ConfigError

    obj = ctx.find_root().obj
    try:
        config = obj.load_config() if obj is not None else None
    except (ConfigError, OSError):
        return None
    account = config.accounts.get(account_name) if config is not None else None
    if account is not None and account.type == "threads":
        ctx.meta["threads_config"] = config
        return account
    return None


def configured_app_secret(ctx: click.Context, account, account_name: str) -> str | None:
    from bridge.config import resolve_secret_field
    from bridge.errors import ConfigError

    if account is None:
        return None
    try:
        return resolve_secret_field(ctx.meta["threads_config"], account_name, "app_secret", "Threads app secret",
                                    f"{account_name}-app-secret").reveal()
    except ConfigError:
        return None


def wait_for_redirect(port: int, seconds: float = 600.0) -> str:
    """The address the browser comes back to on 127.0.0.1:`port` (one request), for read_code."""
    import http.server

    caught: list[str] = []

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            caught.append(f"http://localhost:{port}{self.path}")
            body = b"bridge has the code; you can close this tab."
            self.send_response(200)
            self.send_header("Content-Type", "text/plain; charset=utf-8")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args) -> None:  # the code is in the address: never logged
            pass

    try:
        server = http.server.HTTPServer(("127.0.0.1", port), Handler)
    except OSError as exc:
        raise click.ClickException(f"cannot listen on 127.0.0.1:{port} ({exc.strerror}); choose another --listen port")
    server.timeout = seconds
    with server:
        server.handle_request()
    if not caught:
        raise click.ClickException(f"no browser came back to port {port} within {int(seconds)} s; run the command again")
    return caught[0]


def read_code(pasted: str, state: str) -> str:
    """The code from a pasted redirect address (checking its state) or a bare code; Meta appends "#_"."""
    pasted = pasted.strip()
    if "://" not in pasted:
        code = pasted.split("#", 1)[0]
    else:
        query = parse_qs(urlsplit(pasted).query)
        if query.get("error"):
            raise click.ClickException(f"Threads refused: {query.get('error_description', query['error'])[0]}")
        if query.get("state", [state])[0] != state:
            raise click.ClickException("the pasted address is from another login attempt; run the command again")
        code = (query.get("code") or [""])[0].split("#", 1)[0]
    if not code:
        raise click.ClickException("no authorization code given; run the command again")
    return code


def exchange(graph_url: str, app_id: str, app_secret: str, redirect_uri: str, code: str) -> tuple[str, str, float]:
    """code -> short-lived token -> long-lived token: (short, long, expires_in seconds)."""
    import httpx

    from bridge.deadline import DeadlineTransport

    with httpx.Client(timeout=30, transport=DeadlineTransport(60)) as http:
        short = http.post(f"{graph_url}/oauth/access_token", data={
            "client_id": app_id, "client_secret": app_secret, "grant_type": "authorization_code",
            "redirect_uri": redirect_uri, "code": code})
        short_token = _token(short, "exchanging the code")
        long_lived = http.get(f"{graph_url}/access_token", params={
            "grant_type": "th_exchange_token", "client_secret": app_secret, "access_token": short_token})
        return short_token, _token(long_lived, "exchanging for a long-lived token"), float(
            long_lived.json().get("expires_in") or 0)


def _token(response, doing: str) -> str:
    from bridge.redact import redact

    try:
        body = response.json()
    except ValueError:
        body = {}
    if response.status_code != 200 or not body.get("access_token"):
        message = (body.get("error") or {}).get("message") if isinstance(body.get("error"), dict) else body.get("error_message")
        raise click.ClickException(f"Threads refused {doing}: {redact(str(message or response.text[:200]))}")
    return str(body["access_token"])
