"""Publishing one account's deliveries to its Nostr relays, exactly once.

Exactly once is cheap here: an event's id is the hash of its content, signed once. The events of a delivery are
signed at the moment of posting (created_at = now, never the entry's date: relays refuse backdated events, and
a backfill must not be refused) and stored with the delivery (State.save_nostr_events) BEFORE the first one is
sent. Every later attempt -- a retry, a relay back up, a crash recovered -- sends those same stored events:
a relay that has one answers `duplicate:`, and no relay can ever hold two. So find_existing() never needs to
look: a repeat is always safe.

Each relay's answer to each event is recorded (State.save_nostr_relays; the account's latest in its
platform_status for `bridge status`). A relay that accepted an event is not sent it again; the others are, on
each attempt. refusals.py turns the answers into posted / try again / give up.

A long note on an account with thread_long_notes is a thread of notes (docs/threads-for-notes.md): its further
parts are signed with the rest, in order, each replying to the one before (NIP-10), and stored with them: the
whole thread is one set of events, sent and retried as one, so no part can be made twice.

An edited entry (long_form accounts, edit_on_update) re-publishes only the article: a new kind-30023 event with
the same `d` tag, created_at after the old one's, which replaces it on every relay. The note is not re-posted.

NIP-11: render_limits() reads each relay's information document (cached for an hour in the state); the note is
rendered within the smallest max_content_length, an article longer than a relay's limit is not sent to it
(recorded as refused there, with the reason).
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
from concurrent.futures import ThreadPoolExecutor

from bridge.errors import PermanentPublishError, TransientPublishError
from bridge.platforms.base import Published
from bridge.platforms.nostr import relays as relay_io
from bridge.platforms.nostr import refusals
from bridge.platforms.nostr.events import ARTICLE_KIND, THREAD_REPLY, tag_value
from bridge.platforms.nostr.signing import load_keys, note_address, public_key, sign
from bridge.redact import register_secret

DELETION_KIND = 5  # NIP-09
from bridge.state import DeliveryRow

log = logging.getLogger("bridge.nostr")

LIMITS_MAX_AGE = 3600.0  # a relay's NIP-11 document is read again after this long


def make_target(context) -> "NostrTarget":
    """Platform.make_target."""
    return NostrTarget(context.account, context.settings, context.secret, context.state,
                       user_agent=context.user_agent, total_timeout=context.total_timeout)


class NostrTarget:
    platform = "nostr"

    def __init__(self, account: str, settings, secret, state, *, user_agent: str | None, total_timeout: float,
                 clock=time.time) -> None:
        self.account = account
        self.settings = settings
        self.state = state
        self.user_agent = user_agent
        self.seconds = total_timeout
        self.clock = clock
        self.keys = load_keys(secret.reveal())
        for spelling in (self.keys.secret_key().to_hex(), self.keys.secret_key().to_bech32()):
            register_secret(spelling)  # whichever form the writer gave, neither is ever shown
        self.pubkey, self.npub = public_key(self.keys)

    # --- limits (NIP-11) ---------------------------------------------------------------------------------

    def relay_information(self, fresh: bool = False) -> dict[str, dict]:
        """{relay URL: its limitation (relays.limitation) or {"error": why it could not be read}}, cached."""
        cached = self.state.account(self.account)
        limits = cached.get("limits") or {}
        age = self.clock() - (cached.get("limits_fetched_at") or 0)
        if not fresh and isinstance(limits.get("relays"), dict) and set(limits["relays"]) == set(self.settings.relays) \
                and 0 <= age < LIMITS_MAX_AGE:
            return limits["relays"]
        def read(url: str) -> dict:
            try:
                return relay_io.limitation(relay_io.information(url, seconds=self.seconds, user_agent=self.user_agent))
            except Exception as exc:  # no document is no limit: the relay's answer to the event decides
                return {"error": f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__}

        with ThreadPoolExecutor(max_workers=len(self.settings.relays)) as pool:
            information = dict(zip(self.settings.relays, pool.map(read, self.settings.relays)))
        self.state.save_limits(self.account, {"relays": information}, self.clock())
        return information

    def render_limits(self, strict: bool = False) -> dict:
        information = self.relay_information(fresh=strict)
        lengths = [info["max_content_length"] for info in information.values() if info.get("max_content_length")]
        return {"max_content_length": min(lengths) if lengths else None, "strict": strict}

    # --- publishing ----------------------------------------------------------------------------------------

    def publish(self, delivery: DeliveryRow, payload: dict) -> Published:
        stored = self._signed(delivery, payload)
        events = stored["events"]
        self._send(delivery, stored, events)
        note = events[0]
        return Published(remote_id=note["id"], url=note_address(note["id"]))

    def find_existing(self, delivery: DeliveryRow) -> Published | None:
        return None  # sending the stored events again is always safe: same ids, one event per relay

    def edit(self, delivery: DeliveryRow, payload: dict) -> Published:
        article = next((event for event in payload["events"] if event["kind"] == ARTICLE_KIND), None)
        if article is None:
            raise PermanentPublishError("a Nostr note cannot be edited; only a long-form article (long_form = true) "
                                        "is replaced when its entry changes", not_posted=True)
        stored = self.state.nostr_events(delivery.id) or {"events": [], "relays": {}, "payload_hash": ""}
        digest = self._digest(payload)
        old = next((event for event in stored["events"] if event["kind"] == ARTICLE_KIND), None)
        if stored["payload_hash"] != digest or old is None:  # not this very edit, already signed: sign it now
            identifier = tag_value(old, "d") if old else tag_value(article, "d")
            tags = [["d", identifier] if tag[0] == "d" else tag for tag in article["tags"]]
            # A replaceable event replaces only an older one: never the same second as the article it replaces.
            created_at = max(int(self.clock()), (old["created_at"] + 1) if old else 0)
            new = sign({**article, "tags": tags}, self.keys, created_at)
            events = [event for event in stored["events"] if event["kind"] != ARTICLE_KIND] + [new]
            relays = {url: {key: value for key, value in answers.items() if not old or key != old["id"]}
                      for url, answers in stored["relays"].items()}
            self.state.save_nostr_events(delivery.id, digest, events, relays, self.clock())
            stored = self.state.nostr_events(delivery.id)
        new = next(event for event in stored["events"] if event["kind"] == ARTICLE_KIND)
        self._send(delivery, stored, [new])
        log.info("account %s: article %s replaced (d=%s)", self.account, new["id"], tag_value(new, "d"))
        return Published(remote_id=delivery.remote_id or new["id"], url=delivery.remote_url)

    def delete(self, delivery: DeliveryRow) -> None:
        """A NIP-09 deletion request (kind 5) for the delivery's events, sent to every relay; min_relays must take
        it. Signed anew on each call: a repeated request (after a crash) is harmless, relays keep the events gone."""
        stored = self.state.nostr_events(delivery.id)
        events = stored["events"] if stored else []
        if not events:
            raise PermanentPublishError("no signed events are stored for this post: nothing to ask the relays to delete")
        tags = [["e", event["id"]] for event in events]
        tags += [["a", f"{event['kind']}:{self.pubkey}:{tag_value(event, 'd')}"] for event in events
                 if event["kind"] == ARTICLE_KIND]
        tags += [["k", str(kind)] for kind in sorted({event["kind"] for event in events})]
        request = sign({"kind": DELETION_KIND, "content": "deleted from the blog", "tags": tags}, self.keys,
                       int(self.clock()))
        relays: dict = {url: {} for url in self.settings.relays}
        answers = relay_io.publish_all({url: [request] for url in self.settings.relays}, seconds=self.seconds,
                                       user_agent=self.user_agent)
        for url, by_event in answers.items():
            relays[url] = {event_id: answer.to_dict() for event_id, answer in by_event.items()}
        error = refusals.outcome(relays, [request["id"]], self.settings.min_relays)
        if error is not None:
            raise error

    def _digest(self, payload: dict) -> str:
        return hashlib.sha256(json.dumps([self.pubkey, payload], sort_keys=True).encode()).hexdigest()

    def _signed(self, delivery: DeliveryRow, payload: dict) -> dict:
        """The delivery's signed events: the stored ones, or signed now and stored before anything is sent. Once
        any relay took one of them, they are kept whatever the payload became: that post exists."""
        stored = self.state.nostr_events(delivery.id)
        digest = self._digest(payload)
        if stored is not None and (stored["payload_hash"] == digest or self._anything_accepted(stored)):
            return stored
        events = self._sign_all(payload["events"], int(self.clock()))
        self.state.save_nostr_events(delivery.id, digest, events, {}, self.clock())
        return self.state.nostr_events(delivery.id)

    def _sign_all(self, unsigned: list[dict], now: int) -> list[dict]:
        """Every event signed, in order. A long note's further parts (THREAD_REPLY) reply to the note before them:
        NIP-10 marked `e` tags (the first note "root", the part before "reply") and a `p` tag of the account; each a
        second after the one before, so clients show the thread in order."""
        events: list[dict] = []
        notes: list[dict] = []
        for event in unsigned:
            if event.get(THREAD_REPLY) and notes:
                tags = [["e", notes[0]["id"], "", "root"]]
                if len(notes) > 1:
                    tags.append(["e", notes[-1]["id"], "", "reply"])
                signed = sign({**event, "tags": tags + [["p", self.pubkey]] + event["tags"]}, self.keys, now + len(notes))
            else:
                signed = sign(event, self.keys, now)
            if signed["kind"] != ARTICLE_KIND:
                notes.append(signed)
            events.append(signed)
        return events

    @staticmethod
    def _anything_accepted(stored: dict) -> bool:
        return any(refusals.accepted(stored["relays"], event["id"]) for event in stored["events"])

    def _send(self, delivery: DeliveryRow, stored: dict, events: list[dict]) -> None:
        """Send `events` to every relay that has not accepted them yet; record the answers; raise unless each
        event now has min_relays acceptances."""
        information = self.relay_information()
        relays = {url: dict(stored["relays"].get(url) or {}) for url in self.settings.relays}
        plan: dict[str, list[dict]] = {}
        for url in self.settings.relays:
            for event in events:
                if refusals.judge(relays[url].get(event["id"]) or {"reached": False}).kind == "accepted":
                    continue
                too_long = _too_long(event, information.get(url) or {})
                if too_long:
                    relays[url][event["id"]] = {"ok": False, "message": too_long, "reached": True}
                    continue
                plan.setdefault(url, []).append(event)
        now = self.clock()
        for url, answers in relay_io.publish_all(plan, seconds=self.seconds, user_agent=self.user_agent).items():
            for event_id, answer in answers.items():
                relays[url][event_id] = {**answer.to_dict(), "at": now}
        self.state.save_nostr_relays(delivery.id, relays, now)
        self.state.save_platform_status(self.account, {"relays": _latest(relays, events), "at": now})
        for url, answers in relays.items():
            for event in events:
                answer = answers.get(event["id"])
                if answer is not None and not answer.get("ok"):
                    log.warning("account %s: event %s (kind %d) %s", self.account, event["id"], event["kind"],
                                refusals.describe(url, answer))
        error = refusals.outcome(relays, [event["id"] for event in events], self.settings.min_relays)
        if error is not None:
            raise error

    # --- doctor --------------------------------------------------------------------------------------------

    def diagnose(self) -> dict:
        information = self.relay_information(fresh=True)
        notes, problems = [], []
        for url, info in information.items():
            if info.get("error"):
                notes.append(f"{url}: no NIP-11 information ({info['error']})")
                continue
            facts = [f"max content {info['max_content_length']} characters" if info.get("max_content_length") else
                     "no content limit stated"]
            if info.get("max_message_length"):
                facts.append(f"max message {info['max_message_length']} bytes")
            facts += [name.replace("_", " ") for name in ("auth_required", "payment_required", "restricted_writes")
                      if info.get(name)]
            notes.append(f"{url}: " + ", ".join(facts))
            if info.get("auth_required"):
                problems.append((f"relay {url} requires NIP-42 authentication, which bridge does not do",
                                 "choose a relay that takes events without it, or remove it from relays"))
            if info.get("payment_required") or info.get("restricted_writes"):
                problems.append((f"relay {url} takes events only from allowed (or paying) keys",
                                 f"make sure {self.npub} is allowed there, or remove it from relays"))
        if all(info.get("error") for info in information.values()):
            raise TransientPublishError("no relay answered: " + "; ".join(notes))
        return {"account": self.npub, "notes": notes, "problems": problems}

    def close(self) -> None:
        pass  # every connection is closed when its send is done


def _too_long(event: dict, info: dict) -> str | None:
    """Why `event` exceeds what a relay said it takes (NIP-11), or None."""
    limit = info.get("max_content_length")
    if limit and len(event["content"]) > limit:
        return (f"{refusals.TOO_LONG_PREFIX} (its NIP-11 max_content_length is {limit}; the event's content has "
                f"{len(event['content'])} characters) -- not sent")
    message = info.get("max_message_length")
    size = len(json.dumps(["EVENT", event], ensure_ascii=False).encode())
    if message and size > message:
        return f"{refusals.TOO_LONG_PREFIX} (its NIP-11 max_message_length is {message}; the event is {size} bytes) -- not sent"
    return None


def _latest(relays: dict, events: list[dict]) -> list[dict]:
    """Each relay's answer to the events just sent, with the fix: what `bridge status` shows."""
    shown = []
    for url, answers in relays.items():
        for event in events:
            answer = answers.get(event["id"])
            if answer is None:
                continue
            verdict = refusals.judge(answer)
            shown.append({"relay": url, "kind": event["kind"], "event": event["id"], "ok": verdict.kind == "accepted",
                          "message": answer.get("message") or "", "fix": verdict.fix})
    return shown
