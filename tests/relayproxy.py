"""A websocket proxy in front of a Nostr relay, for the contract suite: everything is forwarded as it came, except
what a rule says for the next EVENT messages -- cut the connection before the relay sees the event, answer
OK false with given words, forward the event but lose the relay's answer -- and events of a blocked key, answered
`blocked:`. It records when each EVENT arrived.

    with RelayProxy(relay.url) as proxy:   # proxy.url: ws://127.0.0.1:PORT
        proxy.cut_next()                    # a relay that goes away mid-post
        proxy.refuse_next("rate-limited: slow down")
        proxy.lose_next()                   # the relay stores it; its OK never arrives
        proxy.block(pubkey_hex)
"""

from __future__ import annotations

import json
import threading
import time
from collections import deque
from dataclasses import dataclass

from websockets.sync.client import connect
from websockets.sync.server import serve


@dataclass(frozen=True)
class SeenEvent:
    at: float
    event: dict


class RelayProxy:
    def __init__(self, upstream: str) -> None:
        self.upstream = upstream
        self._rules: deque[tuple[str, str]] = deque()
        self._blocked: set[str] = set()
        self._seen: list[SeenEvent] = []
        self._lock = threading.Lock()
        self._server = serve(self._handle, "127.0.0.1", 0, compression=None)
        self.url = f"ws://127.0.0.1:{self._server.socket.getsockname()[1]}"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True, name="relay-proxy")

    def __enter__(self) -> "RelayProxy":
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._server.shutdown()
        self._thread.join(10)

    # --- rules ---------------------------------------------------------------------------------------------

    def cut_next(self) -> None:
        self._add("cut", "")

    def refuse_next(self, message: str) -> None:
        self._add("refuse", message)

    def lose_next(self) -> None:
        self._add("lose", "")

    def block(self, pubkey: str) -> None:
        with self._lock:
            self._blocked.add(pubkey)

    def clear(self) -> None:
        with self._lock:
            self._rules.clear()
            self._blocked.clear()

    @property
    def rules(self) -> list[tuple[str, str]]:
        """The rules not used yet (FaultProxy's name, so a ProxiedServer counts them alike)."""
        with self._lock:
            return list(self._rules)

    def seen(self) -> list[SeenEvent]:
        with self._lock:
            return list(self._seen)

    def _add(self, rule: str, message: str) -> None:
        with self._lock:
            self._rules.append((rule, message))

    # --- one client connection ---------------------------------------------------------------------------------

    def _handle(self, client) -> None:
        lost: set[str] = set()  # events whose OK the relay sends and the client never gets
        with connect(self.upstream, open_timeout=10, compression=None) as relay:
            def pump() -> None:
                try:
                    for message in relay:
                        answer = json.loads(message)
                        if answer[0] == "OK" and answer[1] in lost:
                            client.close()  # the answer is lost with the connection
                            return
                        client.send(message)
                except Exception:  # either side went away: the connection ends
                    client.close()

            threading.Thread(target=pump, daemon=True, name="relay-proxy-pump").start()
            try:
                for message in client:
                    data = json.loads(message)
                    if data[0] == "EVENT" and isinstance(data[1], dict):
                        event = data[1]
                        with self._lock:
                            self._seen.append(SeenEvent(time.time(), event))
                            rule = self._rules.popleft() if self._rules else None
                            blocked = event.get("pubkey") in self._blocked
                        if blocked:
                            client.send(json.dumps(["OK", event["id"], False, "blocked: this key may not write here"]))
                            continue
                        if rule and rule[0] == "cut":
                            return  # the connection closes before the relay saw the event
                        if rule and rule[0] == "refuse":
                            client.send(json.dumps(["OK", event["id"], False, rule[1]]))
                            continue
                        if rule and rule[0] == "lose":
                            lost.add(event["id"])
                    relay.send(message)
            except Exception:  # the client went away
                return
