"""Talking to Nostr relays: send events and hear each relay's OK (NIP-01/NIP-20), read stored events back (REQ
up to EOSE), read a relay's information document (NIP-11). Every call has one deadline for all of it, connecting included.

The websocket is `websockets`' synchronous client, not nostr-sdk's Client: the SDK's client is asyncio with a
pool that retries and reconnects in the background on its own schedule; bridge needs the opposite -- one
attempt per relay bounded by bridge's deadline (bridge/deadline.py's [bridge] total_timeout), each relay's own
answer (OK true/false and its reason) per event, and nothing left running afterwards. The relays are written
to in parallel, one thread each.
"""

from __future__ import annotations

import json
import socket
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import httpx

from bridge.deadline import DeadlineTransport, too_slow

CLOSE_SECONDS = 1.0  # waiting for a relay's closing handshake: it has answered already
MAX_MESSAGE_BYTES = 4 * 1024 * 1024  # a relay's message bigger than this is not one bridge asked for
MAX_EVENTS_READ = 5000  # events read from one relay for one REQ: a post's conversation, not a relay's archive


@dataclass(frozen=True)
class Answer:
    """A relay's answer to one event: `ok` as it said it, with its message; `reached` False when no answer came
    (the relay could not be reached, or did not answer in time) -- then the event may or may not be there."""

    ok: bool
    message: str
    reached: bool = True

    def to_dict(self) -> dict:
        return {"ok": self.ok, "message": self.message, "reached": self.reached}


def _message(text: str) -> list:
    """A relay's message as its JSON list. Parsed leniently (not by nostr-sdk, which refuses an OK without an
    event id): nostr-relay, among others, answers a refused event with ["OK", "", false, reason]."""
    message = json.loads(text)
    if not isinstance(message, list) or not message or not isinstance(message[0], str):
        raise ValueError(f"the relay sent something that is not a Nostr message: {text[:80]!r}")
    return message


def _connect(url: str, seconds: float, user_agent: str | None):
    from websockets.sync.client import connect

    return connect(url, open_timeout=seconds, close_timeout=CLOSE_SECONDS, max_size=MAX_MESSAGE_BYTES,
                   user_agent_header=user_agent, compression=None)


def publish(url: str, events: list[dict], *, seconds: float, user_agent: str | None = None) -> dict[str, Answer]:
    """Send `events` to one relay, one at a time, each after the relay's OK to the one before (an OK that names
    no event id then still belongs to exactly one), all before the deadline. {event id: Answer}."""
    end = time.monotonic() + seconds
    answers: dict[str, Answer] = {}
    try:
        with _connect(url, seconds, user_agent) as ws:
            for event in events:
                ws.send(json.dumps(["EVENT", event], ensure_ascii=False))
                while event["id"] not in answers:
                    left = end - time.monotonic()
                    if left <= 0:
                        raise TimeoutError(too_slow(seconds))
                    message = _message(ws.recv(timeout=left))
                    if message[0] == "OK" and len(message) >= 3 and message[1] in (event["id"], ""):
                        answers[event["id"]] = Answer(message[2] is True, str(message[3]) if len(message) > 3 else "")
    except Exception as exc:  # unreachable, refused, reset, a timeout, a message that is not Nostr
        reason = _describe(exc)
        for event in events:
            answers.setdefault(event["id"], Answer(False, reason, reached=False))
    return answers


def publish_all(plan: dict[str, list[dict]], *, seconds: float, user_agent: str | None = None) -> dict[str, dict[str, Answer]]:
    """publish() to every relay of `plan` ({relay URL: its events}) at once. {relay URL: {event id: Answer}}."""
    if not plan:
        return {}
    with ThreadPoolExecutor(max_workers=len(plan), thread_name_prefix="nostr-relay") as pool:
        futures = {url: pool.submit(publish, url, events, seconds=seconds, user_agent=user_agent)
                   for url, events in plan.items()}
        return {url: future.result() for url, future in futures.items()}


@dataclass(frozen=True)
class Found:
    """A relay's answer to one REQ: the events it sent (unverified: anyone may have written them), `reached`
    False when it could not be read in time, and the reason it closed the subscription or could not answer."""

    events: list[dict]
    reached: bool = True
    message: str = ""


def query(url: str, filters: list[dict], *, seconds: float, user_agent: str | None = None,
          max_events: int = MAX_EVENTS_READ) -> Found:
    """One REQ (NIP-01) to one relay: its stored events matching any of `filters`, up to EOSE (or CLOSED, or
    `max_events`), before the deadline. A relay that closes the subscription with nothing sent (e.g.
    "rate-limited: ...") is `reached` False with its reason."""
    end = time.monotonic() + seconds
    events: list[dict] = []
    try:
        with _connect(url, seconds, user_agent) as ws:
            ws.send(json.dumps(["REQ", "bridge", *filters]))
            while len(events) < max_events:
                left = end - time.monotonic()
                if left <= 0:
                    raise TimeoutError(too_slow(seconds))
                message = _message(ws.recv(timeout=left))
                if message[0] == "EVENT" and len(message) >= 3 and isinstance(message[2], dict):
                    events.append(message[2])
                elif message[0] == "EOSE":
                    break
                elif message[0] == "CLOSED":
                    reason = str(message[2]) if len(message) > 2 else ""
                    if not events:
                        return Found([], reached=False, message=reason or "the relay closed the request")
                    break
            ws.send(json.dumps(["CLOSE", "bridge"]))
    except Exception as exc:  # unreachable, refused, reset, a timeout, a message that is not Nostr
        return Found([], reached=False, message=_describe(exc))
    return Found(events)


def query_all(urls: list[str], filters: list[dict], *, seconds: float,
              user_agent: str | None = None) -> dict[str, Found]:
    """query() every relay of `urls` at once. {relay URL: Found}."""
    if not urls or not filters:
        return {url: Found([]) for url in urls}
    with ThreadPoolExecutor(max_workers=len(urls), thread_name_prefix="nostr-read") as pool:
        futures = {url: pool.submit(query, url, filters, seconds=seconds, user_agent=user_agent) for url in urls}
        return {url: future.result() for url, future in futures.items()}


def information_url(relay_url: str) -> str:
    """NIP-11: the relay's own URL with http(s) for ws(s)."""
    return "http" + relay_url[2:] if relay_url.startswith("ws") else relay_url


def information(relay_url: str, *, seconds: float, user_agent: str | None = None) -> dict:
    """The relay's NIP-11 document; raises httpx.HTTPError / ValueError when there is none in time."""
    headers = {"Accept": "application/nostr+json"}
    if user_agent:
        headers["User-Agent"] = user_agent
    with httpx.Client(transport=DeadlineTransport(seconds), headers=headers, follow_redirects=True) as client:
        response = client.get(information_url(relay_url))
        response.raise_for_status()
        document = response.json()
    if not isinstance(document, dict):
        raise ValueError("its information document is not a JSON object")
    return document


def limitation(document: dict) -> dict:
    """The parts of a NIP-11 document that decide whether bridge may post: max_content_length (falling back on
    max_message_length, which bounds the whole ["EVENT", ...] message), auth/payment required, restricted writes."""
    limits = document.get("limitation") if isinstance(document.get("limitation"), dict) else {}

    def number(name: str) -> int | None:
        value = limits.get(name)
        return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else None

    return {
        "max_content_length": number("max_content_length"),
        "max_message_length": number("max_message_length"),
        "auth_required": limits.get("auth_required") is True,
        "payment_required": limits.get("payment_required") is True,
        "restricted_writes": limits.get("restricted_writes") is True,
    }


def _describe(exc: Exception) -> str:
    if isinstance(exc, TimeoutError):
        return str(exc) if str(exc) else "did not answer in time"
    if isinstance(exc, (ConnectionRefusedError, socket.gaierror)):
        return f"cannot connect: {exc.strerror or exc}"
    name = type(exc).__name__
    return f"{name}: {exc}" if str(exc) else name
