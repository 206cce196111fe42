"""Serve one nostr-relay (PyPI `nostr-relay`, an independent Python relay) on 127.0.0.1, for the test fixture.

    python tests/nostr_relay_server.py CONFIG.yaml

nostr-relay enforces `max_event_size` (content length) and a pubkey allow-list (validators in the config), but
its NIP-11 document (GET / with Accept: application/nostr+json) names neither. This launcher answers NIP-11
itself with the relay's own document plus a `limitation` object made from the SAME settings the relay enforces
(max_content_length = max_event_size, restricted_writes = an allow-list is on), unless the config says
`advertise_limits: false` -- so a test can meet both a relay that says its limits and one that only refuses.
Everything else (the websocket protocol, storage, validation) is nostr-relay's own code, unchanged.
"""

from __future__ import annotations

import json
import os
import sys


def main(config_path: str) -> None:
    from nostr_relay import __version__
    from nostr_relay.config import Config

    Config.load(config_path)
    from alembic import config as alembic_config  # nostr-relay's `serve` makes its tables this way

    import nostr_relay

    ini = os.path.join(os.path.dirname(nostr_relay.__file__), "alembic.ini")
    alembic_config.main([f"-c{ini}", "upgrade", "head"])

    from nostr_relay import monkeypatch
    from nostr_relay.web import create_app

    monkeypatch.monkey()
    relay = create_app(config_path)

    whitelist = Config.pubkey_whitelist or []
    document = {
        "name": Config.relay_name, "description": Config.relay_description, "software": "nostr-relay",
        "version": __version__, "supported_nips": [1, 2, 9, 11, 12, 15, 20, 33, 40],
    }
    if Config.get("advertise_limits", True):
        document["limitation"] = {
            "max_content_length": Config.max_event_size,
            "restricted_writes": bool(whitelist),
            "auth_required": False,
            "payment_required": False,
        }
    body = json.dumps(document).encode()

    async def app(scope, receive, send):
        if scope["type"] == "http" and scope["path"] == "/" and any(
                name == b"accept" and b"application/nostr+json" in value for name, value in scope["headers"]):
            await send({"type": "http.response.start", "status": 200,
                        "headers": [(b"content-type", b"application/nostr+json"),
                                    (b"access-control-allow-origin", b"*")]})
            await send({"type": "http.response.body", "body": body})
            return
        await relay(scope, receive, send)

    import uvicorn

    host, port = Config.gunicorn["bind"].rsplit(":", 1)
    uvicorn.run(app, host=host, port=int(port), log_level="warning", ws="websockets")


if __name__ == "__main__":
    main(sys.argv[1])
