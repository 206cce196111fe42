"""Posting a long note's thread part by part, exactly once each (docs/threads-for-notes.md).

A thread is one delivery: its payload is the first post's, with the replies under "thread"
(bridge.render.longnote.REPLIES). Each part made is saved at once (State.save_thread_part: its remote id, URL, CID
and a digest of what was sent), before the next is sent, so that:

    part 0 sent -> saved -> part 1 sent (replying to 0) -> saved -> ... -> the delivery `posted` (part 0's id)

- A crash, a lost answer or an error leaves the parts made so far saved; the next attempt goes on from the first
  part not saved. Only that part's outcome is unknown (later ones were never sent): the target looks for it first
  (find_existing for part 0, find_reply for a reply), as it does for a single post, then sends it with the part's
  own retry identity (Mastodon: its own Idempotency-Key; Bluesky: its own rkey, chosen before the first attempt).
- The first post refused as too long is rendered again strictly by the engine, as a single post is (nothing of the
  thread exists yet); a reply refused so fails the delivery, its earlier parts kept (`bridge retry` goes on there).
- Deleting a thread (bridge/deletes.py) deletes its replies, last first, then the first post; a thread that failed
  part way loses the parts that were posted.
- The way back (bridge/reactions) reads the first post's replies: the thread's own replies are left out, and what
  answers one of them counts as an answer to the post (without_own_parts).
- An edit (edit_on_update) edits, in place, each part whose text changed when the new text splits into as many
  parts; otherwise the thread stays as it is, and the log says why (parts cannot be added in the middle).
"""

from __future__ import annotations

import hashlib
import json
import logging
from dataclasses import replace
from typing import Callable

from bridge.errors import PermanentPublishError, TooLong
from bridge.faults import crash_point
from bridge.platforms.base import Published, Target
from bridge.render import REPLIES
from bridge.state import DeliveryRow, State

log = logging.getLogger("bridge.deliver")


def threaded(payload: dict | None) -> bool:
    """Whether a stored payload is a thread (a first post with replies)."""
    return isinstance(payload, dict) and bool(payload.get(REPLIES))


def first_post(payload: dict) -> dict:
    """The thread's first part: the payload without its replies."""
    return {key: value for key, value in payload.items() if key != REPLIES}


def digest(part: dict) -> str:
    return hashlib.sha256(json.dumps(part, sort_keys=True, ensure_ascii=False).encode()).hexdigest()[:32]


def outcome_uncertain(row: DeliveryRow) -> bool:
    """Whether an earlier attempt may have sent a part without us hearing the answer (as for a single post)."""
    return row.state in ("sending", "unknown") or row.first_sent_at is not None or row.attempts > 0


def publish_thread(state: State, target: Target, row: DeliveryRow, payload: dict, *, uncertain: bool,
                   clock: Callable[[], float], on_progress: Callable[[], None] = lambda: None) -> Published:
    """Send the parts not made yet, in order, saving each; returns the first post. `uncertain`: the first part not
    saved may have been sent by an earlier attempt (outcome_uncertain of the row as it was before this attempt).
    `on_progress` is told after each part (a long thread is many requests: the daemon's watchdog must see it move)."""
    made = {part["part"]: part for part in state.thread_parts(row.id)}
    parts = [first_post(payload), *payload[REPLIES]]
    for index, part in enumerate(parts):
        if index in made:
            continue
        root, parent = made.get(0), made.get(index - 1)
        found = None
        if uncertain:
            found = target.find_existing(row) if index == 0 else target.find_reply(row, part, index, root, parent)
            if found is not None:
                log.info("account %s: part %d of the thread of %s was already posted as %s", row.account, index + 1,
                         row.link or row.entry_key, found.url or found.remote_id)
        uncertain = False  # the parts after it were never sent
        if found is None:
            found = _send(target, row, part, index, root, parent)
        crash_point(f"thread-part-{index + 1}-sent")
        state.save_thread_part(row.id, index, remote_id=found.remote_id, url=found.url, cid=found.cid,
                               digest=digest(part), now=clock())
        made[index] = {"part": index, "remote_id": found.remote_id, "url": found.url, "cid": found.cid}
        crash_point(f"thread-part-{index + 1}-saved")
        on_progress()
    root = made[0]
    return Published(remote_id=root["remote_id"], url=root["url"], cid=root["cid"])


def _send(target: Target, row: DeliveryRow, part: dict, index: int, root: dict | None, parent: dict | None) -> Published:
    if index == 0:
        return target.publish(row, part)
    try:
        return target.publish_reply(row, part, index, root, parent)
    except TooLong as refusal:  # the parts before it are out: the thread cannot be rendered again as a whole
        raise PermanentPublishError(f"part {index + 1} of the thread was refused as too long ({refusal}); the parts "
                                    f"before it are posted, and `bridge retry` goes on from it") from None


def without_own_parts(thread, part_ids: set[str]):
    """A long note's reactions (a bridge.reactions.model.Thread read from its first post) without the thread's own
    replies, which are the writer's text, not comments: what answers one of them answers the post."""
    if not part_ids:
        return thread
    replies = [replace(reply, parent_id=thread.root_id) if reply.parent_id in part_ids else reply
               for reply in thread.replies if reply.remote_id not in part_ids]
    # the platforms count a post's direct replies: the thread's second part is one of them
    own = sum(1 for reply in thread.replies if reply.remote_id in part_ids and reply.parent_id == thread.root_id)
    counts = replace(thread.counts, replies=max(thread.counts.replies - own, 0))
    return replace(thread, replies=replies, counts=counts)


def edit_thread(state: State, target: Target, row: DeliveryRow, payload: dict, clock: Callable[[], float]) -> Published | None:
    """An edit of a posted thread: each part whose text changed is edited in place when the new text has as many
    parts; None (the thread left as it is) otherwise."""
    made = state.thread_parts(row.id)
    parts = [first_post(payload), *payload.get(REPLIES, [])] if threaded(payload) else [payload]
    if len(parts) != len(made):
        log.warning("account %s: %s changed, but its new text makes %d posts where the thread has %d; the thread is "
                    "left as it is (bridge does not add or remove posts in the middle of a thread)", row.account,
                    row.link or row.entry_key, len(parts), len(made))
        return None
    published = None
    for part, done in zip(parts, made):
        if digest(part) == done["digest"]:
            continue
        index = done["part"]
        edited = target.edit(row, part) if index == 0 else target.edit_reply(row, done, part)
        state.save_thread_part(row.id, index, remote_id=done["remote_id"], url=edited.url or done["url"],
                               cid=edited.cid or done["cid"], digest=digest(part), now=clock())
        published = published or (edited if index == 0 else None)
    root = made[0]
    return published or Published(remote_id=root["remote_id"], url=root["url"], cid=root["cid"])
