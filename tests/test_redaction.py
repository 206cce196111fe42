"""Secrets echoed by servers are never stored or shown (issue 13, defect 10).

A server that quotes the request in its error -- the Authorization header, the login body -- hands bridge an error
text holding the credential. It must appear nowhere: not in `status` (text or JSON), `doctor`, poll's output,
the logs (text or JSON), nor in the state database's bytes; and rows stored raw by older versions are redacted
when shown.
"""

from __future__ import annotations

import json
import logging
import sqlite3
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from bridge.config import load_config
from bridge.delivery import credential_fingerprint
from bridge.redact import MARKER, redact, register_secret
from tests.test_pipeline import posts, rss
from tests.test_secrets import _bridge

MASTODON_TOKEN = "Zq9xT4mP0bLw7RkV2nHs8YdC3fJg6uEa1oIt5WcXyB"
BLUESKY_PASSWORD = "sky-Pass-Q9x81zLm"


class EchoServer:
    """Answers every request 401, quoting its Authorization header and body, as a careless server does:
    Mastodon's shape ({"error": ...}) and XRPC's ({"error", "message"}) under /xrpc/."""

    def __init__(self) -> None:
        owner = self
        self.echoed = 0  # responses that carried a credential back

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format, *args):  # quiet
                pass

            def _answer(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0)).decode("utf-8", "replace")
                quoted = f"Authorization: {self.headers.get('Authorization')}; request body: {body}"
                if self.path.startswith("/xrpc/"):
                    answer = {"error": "AuthenticationRequired", "message": f"Invalid identifier or password ({quoted})"}
                else:
                    answer = {"error": f"The access token is invalid ({quoted})"}
                data = json.dumps(answer).encode()
                if MASTODON_TOKEN in data.decode() or BLUESKY_PASSWORD in data.decode():
                    owner.echoed += 1
                self.send_response(401)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            do_GET = do_POST = do_HEAD = _answer

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> "EchoServer":
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.server.shutdown()
        self.server.server_close()


def _run(config: Path, *args: str) -> str:
    result = _bridge(config, *args, env={"BRIDGE_TEST_SKY": BLUESKY_PASSWORD})
    return result.stdout + result.stderr


def _write_config(tmp_path: Path, feed_url: str, instance: str, *, bluesky_service: str | None = None) -> Path:
    """A Mastodon account (token in a file) and, given a service, a Bluesky one (app password in the env)."""
    token_file = tmp_path / "masto-token"
    token_file.write_text(MASTODON_TOKEN + "\n")
    token_file.chmod(0o600)
    text = (f'[bridge]\nstate = "{tmp_path}/s.sqlite3"\n'
            f'[accounts.masto]\ntype = "mastodon"\ninstance = "{instance}"\naccess_token = {{ file = "{token_file}" }}\n')
    accounts = ["masto"]
    if bluesky_service:
        text += (f'[accounts.sky]\ntype = "bluesky"\nhandle = "writer.test"\nservice = "{bluesky_service}"\n'
                 'app_password = { env = "BRIDGE_TEST_SKY" }\n')
        accounts.append("sky")
    text += f'[[feeds]]\nname = "blog"\nurl = "{feed_url}"\naccounts = {json.dumps(accounts)}\n'
    config = tmp_path / "config.toml"
    config.write_text(text)
    return config


def _database_bytes(tmp_path: Path) -> bytes:
    return b"".join(path.read_bytes() for path in sorted(tmp_path.glob("s.sqlite3*")))


def test_a_server_echoing_the_credential_leaks_it_nowhere(tmp_path, feed_server):
    with EchoServer() as echo:
        config = _write_config(tmp_path, feed_server.url("/feed"), echo.url, bluesky_service=echo.url)
        outputs = []
        runs = [["-v", "poll"], ["-v", "poll", "--feed", "blog"], ["--log-format", "json", "-v", "poll", "--feed", "blog"],
                ["status"], ["status", "--json"], ["doctor"]]
        for number, args in enumerate(runs):
            feed_server.route("/feed", rss(posts(number + 1)))  # a new entry for every poll after the baseline
            outputs.append(_run(config, *args))
        assert echo.echoed >= 3  # the server did quote both credentials back (login, posting, doctor)
    everything = "\n".join(outputs)
    assert "account masto is paused" in outputs[1] and "account sky is paused" in outputs[1]
    assert MARKER in outputs[3]  # status shows the server's words, with the credential cut out
    # doctor says it in its own words (bridge/explain.py), so no server text reaches it at all
    assert "FAIL account masto (mastodon): 127.0.0.1 refused the credential (HTTP 401)" in outputs[5]
    database = _database_bytes(tmp_path)
    with sqlite3.connect(tmp_path / "s.sqlite3") as db:
        stored = [reason for (reason,) in db.execute("SELECT paused_reason FROM accounts")]
        stored += [error for (error,) in db.execute("SELECT last_error FROM deliveries WHERE last_error IS NOT NULL")]
    assert len(stored) == 4 and all(MARKER in text for text in stored), stored  # 2 pauses, 2 refused deliveries
    for secret in (MASTODON_TOKEN, BLUESKY_PASSWORD):
        assert secret not in everything
        assert secret.encode() not in database


def test_rows_stored_raw_by_an_older_version_are_redacted_when_shown(tmp_path, feed_server):
    """Before this fix the server's text was stored as it came: status and poll redact it on the way out."""
    feed_server.route("/feed", rss(posts(1)))
    config = _write_config(tmp_path, feed_server.url("/feed"), "http://127.0.0.1:9")
    assert "1 feed(s)" in _run(config, "poll")
    feed_server.route("/feed", rss(posts(2)))
    old_text = f"HTTP 401: The access token is invalid (Authorization: Bearer {MASTODON_TOKEN})"
    fingerprint = credential_fingerprint(load_config(config), "masto")  # paused with this very token: stays paused
    with sqlite3.connect(tmp_path / "s.sqlite3") as db:  # as an older bridge left it
        db.execute("INSERT OR REPLACE INTO accounts (name, paused_reason, paused_at, paused_fingerprint) "
                   "VALUES ('masto', ?, strftime('%s', 'now'), ?)", [f"old pause: {old_text}", fingerprint])
        db.execute("UPDATE feeds SET last_error = ?, error_count = 1", [f"old feed error: {old_text}"])
    outputs = [_run(config, *args) for args in (["status"], ["status", "--json"], ["poll", "--feed", "blog"])]
    assert "old pause: HTTP 401" in outputs[0] and "old feed error" in outputs[0]
    assert "account masto is paused: old pause" in outputs[2]
    assert all(MASTODON_TOKEN not in output for output in outputs), outputs


@pytest.mark.parametrize(
    "text, kept",
    [
        ("Authorization: Bearer abcDEF123456789xyz", "Authorization: Bearer "),
        ("GET /api?access_token=abcdef123456&page=2", "access_token="),
        ('{"identifier": "me.test", "password": "hunter2hunter2"}', '"identifier": "me.test"'),
        ('"{\\"refreshJwt\\": \\"abcdefghijkl\\"}"', "refreshJwt"),
        ("session eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJkaWQ6cGxjOnh5eiJ9.c2lnbmF0dXJl expired", "session "),
        ("Invalid identifier or password: k2x7-abcd-m3nq-z5ty", "Invalid identifier or password: "),
        ("HTTP 500 from https://reader:hunter2hunter2@blog.example/feed", "https://reader:"),
        ("refreshed: THAAk2x7" + "Qw9_Zr-" * 12 + " kept", "refreshed: "),
    ],
)
def test_credential_shapes_are_redacted_without_a_known_secret(text, kept):
    redacted = redact(text)
    assert MARKER in redacted and kept in redacted
    assert not any(part in redacted for part in ("abcDEF", "abcdef123456", "hunter2", "abcdefghijkl", "eyJ", "k2x7", "Qw9_"))


@pytest.mark.parametrize(
    "text",
    [
        "account masto: posted https://blog.example/when-mama-said-this -> https://m.example/@me/1",
        "accounts.m.access_token: the secret file /run/token is empty — put the credential in it",
        "sky refused the credentials: Invalid identifier or password",
        "feed blog: HTTP 404 from https://blog.example/2024/data-team-news/feed.xml",
        "Threads refused the post: THREADS_API__LINK_LIMIT_EXCEEDED (code 100)",
    ],
)
def test_ordinary_messages_are_left_alone(text):
    assert redact(text) == text


def test_a_known_secret_is_redacted_in_any_spelling():
    register_secret("tok/with+special=chars")
    echoed = "the server got tok/with+special=chars, as a form field tok%2Fwith%2Bspecial%3Dchars"
    assert redact(echoed) == f"the server got {MARKER}, as a form field {MARKER}"


@pytest.fixture
def bridge_logging(capsys):
    """bridge's logging set up for one test, and taken down after it (it installs a handler on the root logger)."""
    from bridge.logs import setup_logging

    roots = [logging.getLogger(), logging.getLogger("bridge")]
    saved = [(logger, logger.handlers[:], logger.level, logger.propagate) for logger in roots]
    yield setup_logging
    for logger, handlers, level, propagate in saved:
        logger.handlers[:], logger.level, logger.propagate = handlers, level, propagate


@pytest.mark.parametrize("fmt", ["text", "json"])
def test_no_log_line_carries_a_secret_not_even_a_librarys(bridge_logging, capsys, fmt):
    bridge_logging(fmt, "info")
    register_secret("library-leaked-token-0001")
    logging.getLogger("bridge.deliver").error("account m paused: %s", "HTTP 401 (Bearer library-leaked-token-0001)")
    logging.getLogger("atproto_client").warning("request failed: %s", '{"password": "hunter2hunter2"}')
    logging.getLogger("bridge.deliver").info("posted", extra={"fields": {"error": "token=library-leaked-token-0001"}})
    err = capsys.readouterr().err
    assert "account m paused" in err and "request failed" in err and MARKER in err
    assert "library-leaked-token-0001" not in err and "hunter2" not in err


def _redact_every_pattern(text: str) -> str:
    """redact as it was first written: the known secrets, then every pattern, always (the obvious way)."""
    from bridge.redact import _PATTERNS, _known

    for secret in sorted(_known, key=len, reverse=True):
        if secret in text:
            text = text.replace(secret, MARKER)
    for pattern, replacement in _PATTERNS:
        text = pattern.sub(replacement, text)
    return text


# Pieces of ordinary text and of every credential shape, in odd cases and spellings (the Kelvin sign, a long s and
# a dotted capital I match k, s and i when case is ignored), so that generated texts hit each pattern's edges.
_PIECES = ["feed", " ", ": ", "=", "\\\"", "'", "\"", "-", "/", ".", "@", "://", "&", "\n", "HTTP 200", "baseline 20",
           "Bearer", "bEaReR ", "basic\t", "DPOP  ", "access_token", "Refresh_Token", "ID_TOKEN", "client_secret",
           "App_Password", "apppassword", "PassWord", "passwd", "secret", "api_key", "APIKEY", "accessJwt",
           "refreshjwt", "to\u212aen", "\u017fecret", "\u0130d_token", "eyJ", "eyJhbGciOiJIUzI1NiJ9", "abcd",
           "k2x7", "m3nq", "z5ty", "ABCD", "nsec1", "qpzry9x8gf2tvdw0s3jn54khce6mua7l", "TH", "Qw9_Zr-" * 9,
           "hunter2hunter2", "user", "https://reader:pw@host/x", "[redacted]", "é", "日本", "Zq9-known-Secret"]


def test_redaction_skips_the_patterns_only_when_none_could_match():
    import random

    register_secret("Zq9-known-Secret")
    rng = random.Random(22)
    texts = ["".join(rng.choice(_PIECES) for _ in range(rng.randint(1, 12))) for _ in range(20_000)]
    assert sum(redact(text) != text for text in texts) > 4_000  # the generated texts do hold credentials
    assert [redact(text) for text in texts] == [_redact_every_pattern(text) for text in texts]


def test_the_keyword_search_starts_at_every_letter_a_keyword_can_start_with():
    """Its quick lookahead names the keywords' first letters; case-insensitive matching lets others stand for them."""
    import re
    import sys

    from bridge.redact import _KEYWORDS, _MAY_MATCH_KEYWORD

    firsts = "".join({keyword[0] for keyword in _KEYWORDS})
    starts = [chr(code) for code in range(sys.maxunicode + 1) if re.match(f"[{firsts}]", chr(code), re.IGNORECASE)]
    assert "\u0130" in starts and "\u017f" in starts  # the dotted capital I, the long s
    lookahead = re.compile(_MAY_MATCH_KEYWORD.pattern.split(")", 1)[0] + ")", re.IGNORECASE)
    assert all(lookahead.match(char) for char in starts)


@pytest.mark.parametrize("fmt", ["text", "json"])
def test_each_log_line_is_redacted_once_and_whole(bridge_logging, capsys, fmt):
    """The text format writes the message the filter redacted; a traceback's line is redacted whole again."""
    bridge_logging(fmt, "info")
    register_secret("line-known-token-0002")
    log = logging.getLogger("bridge.poll")
    log.info("feed %s: new, HTTP 200, baseline 20", "blog")
    log.warning("feed %s: %s", "blog", "HTTP 401 from https://reader:hunter2hunter2@blog.example/ (line-known-token-0002)")
    try:
        raise RuntimeError("refused password=hunter2hunter2")
    except RuntimeError:
        log.exception("unexpected: token=abcdefghijkl")
    from bridge.logs import log_event

    log_event(log, logging.INFO, "feed blog: new", feed="blog", error="Bearer abcDEF123456789xyz")
    err = capsys.readouterr().err
    lines = err.splitlines()
    assert "feed blog: new, HTTP 200, baseline 20" in lines[0]
    assert "https://reader:[redacted]@blog.example/ ([redacted])" in lines[1]
    assert "Traceback" in err and "RuntimeError: refused password=[redacted]" in err and "token=[redacted]" in err
    assert not any(secret in err for secret in ("hunter2", "line-known-token", "abcdefghijkl", "abcDEF"))
    if fmt == "json":
        assert json.loads(lines[-1])["error"] == "Bearer [redacted]"
