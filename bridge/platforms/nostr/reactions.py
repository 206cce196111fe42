"""Reading a Nostr note's reactions back from the account's relays.

Two rounds, each one REQ per relay (relays.query_all: every relay at once, one bounded attempt each, under the
gatherer's deadline); the relays' answers are merged and de-duplicated by event id, and every event's id and
signature are checked with nostr-sdk before anything in it is used (an unverifiable event is dropped):

1. what refers to the note: kind 1 tagging it with `e` (replies, NIP-10) or `q` (quotes, NIP-18), kind 7
   (reactions, NIP-25), kind 6 and 16 (reposts, NIP-18), and the note itself (its author, for 2.);
2. what refers to those: kind 5 deletions (NIP-09) of any of them, and the kind-0 metadata (name, picture)
   of the authors of replies and quotes.

A deletion counts only when its author wrote the deleted event; the writer deleting the note itself is
RemotePostGone. Threading: NIP-10 `reply`/`root` markers, or the deprecated positional `e` tags (the last one
is the parent). A reply to a reply that does not also tag the note as its root is not found (clients add it:
NIP-10 asks for the root tag). Likes: kind-7 `+`, empty or any emoji, once per person; `-` is not a like.

Respect: Nostr has no "do not index" flag. bridge keeps out a reply that is a NIP-70 protected event (the
`["-"]` tag: its author wants it kept to the relays they chose) or carries a NIP-36 `content-warning` (the
blog could not show the warning). The author's handle is their npub: a NIP-05 name is only a claim until its
domain is asked, which would be one more request to a third party per author.
Links go through a web gateway ([accounts.NAME] web_gateway, https://njump.me by default): /<nevent> for a
note, /<npub> for a person.
"""

from __future__ import annotations

import json
import time
from datetime import datetime, timezone

from bridge.config import AccountConfig, Secret
from bridge.errors import ReactionsError, ReactionsRateLimited, RemotePostGone
from bridge.notethreads import without_own_parts
from bridge.platforms.nostr import relays as relay_io
from bridge.platforms.nostr.events import THREAD_REPLY
from bridge.reactions.gatherer import HttpOptions
from bridge.reactions.model import Author, Counts, Reply, Thread
from bridge.state import DeliveryRow

PLATFORM = "nostr"
NOTE, METADATA, REPOST, DELETION, REACTION, GENERIC_REPOST = 1, 0, 6, 5, 7, 16
MAX_IDS_PER_FILTER = 500  # ids or authors per filter in round 2: relays refuse a REQ beyond their message size
RATE_LIMIT_PAUSE = 15 * 60  # a relay that says "rate-limited:" names no time: come back in a quarter of an hour
MAX_FIELD = 2000  # characters kept of a profile's name (the core cuts it further when it writes a document)


def gather(settings: AccountConfig, secret: Secret | None, delivery: DeliveryRow, *, deadline: float,
           http: HttpOptions) -> Thread:
    note_id = delivery.remote_id
    if not note_id:
        raise RemotePostGone("the delivery has no note id")
    gateway = settings.web_gateway.rstrip("/")
    relays = list(settings.relays)
    first = _read(relays, [{"kinds": [NOTE, REPOST, REACTION, GENERIC_REPOST], "#e": [note_id]},
                           {"kinds": [NOTE], "#q": [note_id]}, {"ids": [note_id]}], deadline, http, share=0.5)
    note = first.pop(note_id, None)
    ids = sorted(first)
    authors = sorted({event["pubkey"] for event in first.values() if event["kind"] == NOTE})  # who is shown
    second = _read(relays, [{"kinds": [DELETION], "#e": chunk} for chunk in _chunks(ids + [note_id])]
                   + [{"kinds": [METADATA], "authors": chunk} for chunk in _chunks(authors)], deadline, http)
    writer = note["pubkey"] if note else _writer(secret)  # a relay honouring the deletion drops the note too
    if _note_deleted(second.values(), note_id, writer):
        raise RemotePostGone("the writer deleted the note (NIP-09)")
    deleted = _deleted(second.values(), first)
    events = [event for event_id, event in first.items() if event_id not in deleted]
    profiles = _profiles(event for event in second.values() if event["kind"] == METADATA)
    replies = [reply for event in events if (reply := _reply(event, note_id, profiles, gateway)) is not None]
    thread = Thread(root_id=note_id, root_url=f"{gateway}/{_nevent(note_id, relays)}",
                    counts=_counts(events, note_id, len(replies)), replies=replies)
    return without_own_parts(thread, _own_parts(events, writer, delivery.payload))


def _own_parts(events: list[dict], writer: str | None, payload: dict | None) -> set[str]:
    """The ids of a long note's further parts (docs/threads-for-notes.md): the writer's notes carrying the text of
    one of the payload's thread replies. They are the post itself, not comments on it."""
    texts = {event.get("content") for event in (payload or {}).get("events") or [] if event.get(THREAD_REPLY)}
    return {event["id"] for event in events
            if texts and event["kind"] == NOTE and event["pubkey"] == writer and event.get("content") in texts}


# --------------------------------------------------------------------------- reading


def _read(relays: list[str], filters: list[dict], deadline: float, http: HttpOptions, *,
          share: float = 1.0) -> dict[str, dict]:
    """Every relay's answer to `filters`, merged by event id, verified, within `share` of the time left (a silent
    relay must not eat the second round's time) and the usual connect + read timeouts. Raises when no relay
    answered: in the second round too, since without the deletions a deleted reply would come back."""
    left = deadline - time.monotonic()
    if left <= 0:
        raise ReactionsError("out of time before reading the relays")
    seconds = min(left * share, http.connect_timeout + http.read_timeout)
    found = relay_io.query_all(relays, filters, seconds=seconds, user_agent=http.user_agent)
    if not any(answer.reached for answer in found.values()):
        reasons = "; ".join(f"{url}: {answer.message}" for url, answer in found.items())
        if any(answer.message.startswith("rate-limited:") for answer in found.values()):
            raise ReactionsRateLimited(f"no relay answered, one is rate limiting: {reasons}", time.time() + RATE_LIMIT_PAUSE)
        raise ReactionsError(f"no relay answered: {reasons}")
    merged: dict[str, dict] = {}
    for answer in found.values():
        for event in answer.events:
            if isinstance(event.get("id"), str) and event["id"] not in merged and _verified(event):
                merged[event["id"]] = event
    return merged


def _verified(event: dict) -> bool:
    """Its id is the hash of its content and its signature is its author's (NIP-01), by nostr-sdk."""
    import nostr_sdk

    try:
        return nostr_sdk.Event.from_json(json.dumps(event)).verify()
    except Exception:  # not an event at all: missing fields, wrong types, a bad key
        return False


def _chunks(values: list[str]) -> list[list[str]]:
    return [values[start:start + MAX_IDS_PER_FILTER] for start in range(0, len(values), MAX_IDS_PER_FILTER)]


# --------------------------------------------------------------------------- making sense of it


def _tags(event: dict, name: str) -> list[list[str]]:
    return [tag for tag in event.get("tags") or [] if isinstance(tag, list) and len(tag) > 1 and tag[0] == name
            and isinstance(tag[1], str)]


def _deleted(deletions, events: dict[str, dict]) -> set[str]:
    """Ids of `events` that their own author deleted (NIP-09: a deletion by anyone else means nothing)."""
    gone = set()
    for deletion in deletions:
        if deletion["kind"] != DELETION:
            continue
        for tag in _tags(deletion, "e"):
            target = events.get(tag[1])
            if target is not None and target["pubkey"] == deletion["pubkey"]:
                gone.add(tag[1])
    return gone


def _writer(secret: Secret | None) -> str | None:
    from bridge.errors import AuthError
    from bridge.platforms.nostr.signing import load_keys, public_key

    try:
        return public_key(load_keys(secret.reveal()))[0] if secret is not None else None
    except AuthError:  # a key that does not parse: publishing says so; here it only means "writer unknown"
        return None


def _note_deleted(deletions, note_id: str, writer: str | None) -> bool:
    return writer is not None and any(deletion["kind"] == DELETION and deletion["pubkey"] == writer
                                      and any(tag[1] == note_id for tag in _tags(deletion, "e"))
                                      for deletion in deletions)


def _parent(event: dict, note_id: str) -> str | None:
    """The event this kind-1 event answers, when it is in the note's thread (NIP-10); None for a mention."""
    tags = _tags(event, "e")
    marked = {tag[3]: tag[1] for tag in tags if len(tag) > 3 and tag[3] in ("root", "reply")}
    if marked:
        root = marked.get("root")
        parent = marked.get("reply", root)
        return parent if note_id in (root, parent) else None
    if any(len(tag) > 3 and tag[3] == "mention" for tag in tags):
        tags = [tag for tag in tags if not (len(tag) > 3 and tag[3] == "mention")]
    if not tags or note_id not in (tags[0][1], tags[-1][1]):
        return None
    return tags[-1][1]  # positional (deprecated): first the root, last the one answered


def _withheld(event: dict) -> bool:
    """The author asked, in the ways Nostr has, not to be spread further (see the module's docstring)."""
    names = {tag[0] for tag in event.get("tags") or [] if isinstance(tag, list) and tag}
    return "-" in names or "content-warning" in names  # NIP-70 protected, NIP-36 content warning


def _reply(event: dict, note_id: str, profiles: dict[str, dict], gateway: str) -> Reply | None:
    if event["kind"] != NOTE or _withheld(event):
        return None
    parent = _parent(event, note_id)
    if parent is None:
        return None  # a quote, or a note that only mentions the post
    return Reply(
        platform=PLATFORM,
        remote_id=event["id"],
        url=f"{gateway}/{_nevent(event['id'], [])}",
        author=_author(event["pubkey"], profiles.get(event["pubkey"], {}), gateway),
        created_at=datetime.fromtimestamp(event["created_at"], timezone.utc).isoformat().replace("+00:00", "Z"),
        parent_id=parent,
        text=event.get("content") if isinstance(event.get("content"), str) else "",
        language=_language(event),
    )


def _language(event: dict) -> str | None:
    """NIP-32: an ISO-639-1 `l` label (["l", "en", "ISO-639-1"])."""
    return next((tag[1] for tag in _tags(event, "l") if len(tag) > 2 and tag[2] == "ISO-639-1"), None)


def _counts(events: list[dict], note_id: str, replies: int) -> Counts:
    likers, reposters, quotes = set(), set(), set()
    for event in events:
        targets = [tag[1] for tag in _tags(event, "e")]
        if event["kind"] == REACTION and targets and targets[-1] == note_id and event.get("content") != "-":
            likers.add(event["pubkey"])  # NIP-25: the last `e` tag is the one reacted to; "-" is a dislike
        elif event["kind"] in (REPOST, GENERIC_REPOST) and note_id in targets:
            reposters.add(event["pubkey"])
        elif event["kind"] == NOTE and any(tag[1] == note_id for tag in _tags(event, "q")) \
                and _parent(event, note_id) is None:
            quotes.add(event["id"])
    return Counts(likes=len(likers), reposts=len(reposters), quotes=len(quotes), replies=replies)


def _profiles(events) -> dict[str, dict]:
    """{pubkey: its newest kind-0 content} (metadata is replaceable: the newest one counts)."""
    newest: dict[str, dict] = {}
    for event in events:
        if event["pubkey"] in newest and newest[event["pubkey"]]["created_at"] >= event["created_at"]:
            continue
        newest[event["pubkey"]] = event
    profiles = {}
    for pubkey, event in newest.items():
        try:
            content = json.loads(event.get("content") or "{}")
        except ValueError:
            continue
        if isinstance(content, dict):
            profiles[pubkey] = content
    return profiles


def _author(pubkey: str, profile: dict, gateway: str) -> Author:
    import nostr_sdk

    npub = nostr_sdk.PublicKey.parse(pubkey).to_bech32()

    def field(name: str) -> str:
        value = profile.get(name)
        return value.strip()[:MAX_FIELD] if isinstance(value, str) else ""

    name = field("display_name") or field("name")
    picture = field("picture")
    return Author(handle=npub, name=name, avatar_url=picture if picture.startswith("https://") else None,
                  profile_url=f"{gateway}/{npub}", id=pubkey)


def _nevent(event_id: str, relays: list[str]) -> str:
    """NIP-19 nevent: the event id with relay hints, so the gateway knows where to look."""
    import nostr_sdk

    return nostr_sdk.Nip19Event(nostr_sdk.EventId.parse(event_id), None, None,
                                [nostr_sdk.RelayUrl.parse(url) for url in relays[:3]]).to_bech32()
