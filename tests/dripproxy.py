"""A proxy on 127.0.0.1 in front of a real test server that hands some answers back a byte at a time.

    with DripProxy(fake.url, drip_on="POST /api/v1/statuses") as proxy:   # proxy.url instead of fake.url
        ...                      # that request reaches the server, which does the work; its answer drips
        proxy.drip_on = None     # from now on every answer comes back whole

Every request is forwarded as it came, on a connection of its own (Connection: close, so the answer ends where the
server closes); the answer to a request whose request line contains `drip_on` is sent back one byte every
`interval` seconds -- headers first, so the client waits for the headers -- until the client hangs up, the proxy
stops, or `give_up_after` seconds have passed: then the proxy hangs up, so that a client without a deadline makes a
test fail (with the wrong error, too late) rather than hang. Only loopback is contacted.
"""

from __future__ import annotations

import socket
import threading
import time
from urllib.parse import urlsplit


class DripProxy:
    def __init__(self, upstream: str, *, drip_on: str | None, interval: float = 1.0,
                 give_up_after: float = 60.0) -> None:
        parts = urlsplit(upstream)
        assert parts.hostname in ("127.0.0.1", "localhost"), "loopback only"
        self.upstream = (parts.hostname, parts.port or 80)
        self.drip_on = drip_on
        self.interval = interval
        self.give_up_after = give_up_after
        self.dripped: list[str] = []  # the request lines whose answers dripped
        self.connections = 0  # accepted from clients (a client keeping its connection alive makes one)
        self._stopping = threading.Event()
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self._listener.getsockname()[1]}"
        self._thread = threading.Thread(target=self._accept, name="drip-proxy", daemon=True)

    def __enter__(self) -> "DripProxy":
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stopping.set()
        try:
            self._listener.shutdown(socket.SHUT_RDWR)  # wakes accept(); close() alone does not
        except OSError:
            pass
        self._listener.close()
        self._thread.join(5)

    def _accept(self) -> None:
        while not self._stopping.is_set():
            try:
                client, _ = self._listener.accept()
            except OSError:  # closed: stopping
                return
            self.connections += 1
            threading.Thread(target=self._serve, args=(client,), daemon=True).start()

    def _serve(self, client: socket.socket) -> None:
        with client:
            buffered = b""
            try:
                while not self._stopping.is_set():
                    request, buffered = _read_request(client, buffered)
                    if request is None:
                        return
                    if not self._answer(client, request, request.split(b"\r\n", 1)[0].decode("latin-1")):
                        return
            except OSError:  # the client hung up: that is what the tests make it do
                return

    def _answer(self, client: socket.socket, request: bytes, line: str) -> bool:
        """Answer one request; False when the connection is to end (tests/faultproxy.py answers otherwise)."""
        answer = self._forward(request)
        if self.drip_on is not None and self.drip_on in line:
            self.dripped.append(line)
            self._drip(client, answer)
            return False
        client.sendall(answer)
        return True

    def _forward(self, request: bytes) -> bytes:
        head, body = request.split(b"\r\n\r\n", 1)
        lines = [line for line in head.split(b"\r\n") if not line.lower().startswith(b"connection:")]
        with socket.create_connection(self.upstream, timeout=30) as upstream:
            upstream.sendall(b"\r\n".join(lines + [b"Connection: close"]) + b"\r\n\r\n" + body)
            answer = b""
            while chunk := upstream.recv(65536):
                answer += chunk
        return answer

    def _drip(self, client: socket.socket, answer: bytes) -> None:
        until = time.monotonic() + self.give_up_after
        for byte in answer:
            client.sendall(bytes([byte]))
            if self._stopping.wait(self.interval) or time.monotonic() > until:
                return


def _read_request(sock: socket.socket, buffered: bytes) -> tuple[bytes | None, bytes]:
    """One whole request (head and a Content-Length body) and what came after it; None at the end."""
    while b"\r\n\r\n" not in buffered:
        chunk = sock.recv(65536)
        if not chunk:
            return None, b""
        buffered += chunk
    head, rest = buffered.split(b"\r\n\r\n", 1)
    length = 0
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value.strip())
    while len(rest) < length:
        chunk = sock.recv(65536)
        if not chunk:
            return None, b""
        rest += chunk
    return head + b"\r\n\r\n" + rest[:length], rest[length:]
