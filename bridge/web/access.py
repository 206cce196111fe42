"""Who may read the daemon's HTTP server: the listen address, the token, and the check of each request.

The rules:
- Without `[bridge] http_token`, bridge listens on loopback only (127.0.0.0/8, ::1, localhost) and serves
  requests from loopback; any other listen address is a config error, and a request from elsewhere is refused.
- With a token, every request must carry it, from loopback too: behind a reverse proxy every request comes
  from loopback, so the peer's address proves nothing. It travels as `Authorization: Bearer TOKEN` (Prometheus,
  curl) or as the password of HTTP Basic auth, any user name (what a phone's browser can send after asking).
  Never in the URL: query strings end up in proxy logs, browser history and Referer headers.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import ipaddress
from dataclasses import dataclass

from bridge.addresses import LOCALHOST, is_loopback
from bridge.config import Config, Secret, resolve_secret_ref
from bridge.errors import ConfigError

# The systemd credential found by itself in $CREDENTIALS_DIRECTORY (LoadCredential=http_token:/path).
TOKEN_CREDENTIAL = "http_token"


def parse_listen(value: str) -> tuple[str, int]:
    """"127.0.0.1:8787", "[::1]:8787", "localhost:8787" -> (host, port); ValueError saying what is wrong."""
    host, sep, port_text = value.rpartition(":")
    if not sep or not host:
        raise ValueError(f"{value!r} is not HOST:PORT")
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    if host != LOCALHOST:
        try:
            ipaddress.ip_address(host)
        except ValueError:
            raise ValueError(f"{host!r} is not an IP address (nor localhost)") from None
    if not port_text.isdigit() or not 0 <= int(port_text) <= 65535:
        raise ValueError(f"{port_text!r} is not a port number (0 to 65535; 0 picks a free one)")
    return host, int(port_text)



@dataclass(frozen=True)
class Access:
    """The resolved access rule of one server."""

    host: str
    port: int
    token: Secret | None

    @property
    def loopback_only(self) -> bool:
        return is_loopback(self.host)

    def allows(self, peer: str, authorization: str | None) -> bool:
        if self.token is not None:
            presented = presented_token(authorization)
            # compare_digest: the time taken does not tell how much of a guess was right
            return presented is not None and hmac.compare_digest(presented.encode(), self.token.reveal().encode())
        return self.loopback_only and is_loopback(peer)


def presented_token(authorization: str | None) -> str | None:
    """The token in an Authorization header: `Bearer TOKEN`, or Basic auth whose password is the token."""
    if not authorization:
        return None
    scheme, _, value = authorization.strip().partition(" ")
    value = value.strip()
    if scheme.lower() == "bearer" and value:
        return value
    if scheme.lower() == "basic" and value:
        try:
            decoded = base64.b64decode(value, validate=True).decode("utf-8")
        except (binascii.Error, UnicodeDecodeError):
            return None
        _, sep, password = decoded.partition(":")
        return password if sep and password else None
    return None


def resolve_access(config: Config) -> Access | None:
    """The server's access rule from the config, None when the server is off; ConfigError when listening beyond
    loopback without a token, or when the token's source is broken."""
    listen = config.bridge.http_listen
    if not listen:
        return None
    host, port = parse_listen(listen)  # validated when the config was loaded
    token = resolve_secret_ref(config, "bridge.http_token", config.bridge.http_token, TOKEN_CREDENTIAL)
    if token is None and not is_loopback(host):
        raise ConfigError(
            "bridge.http_listen",
            f"{listen!r} listens beyond loopback, and no http_token is set: anyone who can reach it would read "
            "the status page",
            'add http_token = { env = "VARIABLE" } or { file = "/path" } (or a systemd credential named '
            f'{TOKEN_CREDENTIAL!r}), or listen on "127.0.0.1:{port}" and put a reverse proxy in front',
        )
    return Access(host, port, token)
