"""What the relays' answers to one delivery mean: posted, try again, or give up -- and what to do about it.

A relay answers each event with OK true or OK false and a machine-readable prefix (NIP-01): `duplicate:` (it has
it already: as good as accepted), `blocked:` / `restricted:` (this key may not write there), `auth-required:`
(NIP-42 login first), `rate-limited:`, `invalid:`, `pow:` (proof of work wanted), `error:`. nostr-relay, among
others, also says `rejected:` for a key outside its allow-list. No answer at all (unreachable, too slow) says
nothing about whether the event got there: sending the same event again is always safe (same id).

A delivery is posted when each of its events is accepted by at least `min_relays` relays. Otherwise:
- while the relays that have not refused for good can still make up `min_relays`: transient (RateLimited when
  what is missing is only rate limits) -- the same events are sent again later;
- else, when every refusal is about the key's right to write (blocked, restricted, auth, payment): AuthError, the
  account pauses with its queue kept;
- else (invalid, pow, too long for the relay): PermanentPublishError with the relays' own words.
"""

from __future__ import annotations

from dataclasses import dataclass

from bridge.errors import AuthError, PermanentPublishError, PublishError, RateLimited, TransientPublishError

# prefix -> (kind, the fix a writer can apply). Kinds: accepted, transient, rate, access, permanent.
_PREFIXES = {
    "duplicate": ("accepted", ""),
    "rate-limited": ("rate", "wait: bridge sends the same event again later; post less often to this relay "
                             "(posts_per_hour) if it keeps saying so"),
    "blocked": ("access", "this relay does not take events from your key: ask its operator to allow your npub, "
                          "or remove the relay from the account's relays"),
    "restricted": ("access", "this relay only takes events from allowed keys (or paying users): ask its operator "
                             "to allow your npub, or remove the relay from the account's relays"),
    "rejected": ("access", "this relay does not take events from your key: ask its operator to allow your npub, "
                           "or remove the relay from the account's relays"),
    "auth-required": ("access", "this relay wants a NIP-42 login, which bridge does not do: choose a relay that "
                                "takes events without one, or remove it from the account's relays"),
    "payment-required": ("access", "this relay takes events from paying users only: pay for your npub, or remove "
                                   "the relay from the account's relays"),
    "pow": ("permanent", "this relay wants proof of work, which bridge does not do: remove it from the account's "
                         "relays"),
    "invalid": ("permanent", "the relay refused the event itself (too long, too old, not allowed there): see its "
                             "words; use a relay with room for it, or set long_form = false for articles"),
    "error": ("transient", "the relay failed on its side: bridge sends the same event again later"),
}
UNREACHED_FIX = "check that the relay is up and reachable from this machine; bridge sends the same event again later"
TOO_LONG_PREFIX = "invalid: too long for this relay"


@dataclass(frozen=True)
class Verdict:
    kind: str  # accepted / transient / rate / access / permanent
    fix: str


def judge(answer: dict) -> Verdict:
    """What one relay's answer to one event ({ok, message, reached}) means."""
    if answer.get("ok"):
        return Verdict("accepted", "")
    if not answer.get("reached", True):
        return Verdict("transient", UNREACHED_FIX)
    prefix = (answer.get("message") or "").split(":", 1)[0].strip().lower()
    kind, fix = _PREFIXES.get(prefix, ("permanent", "see the relay's words; remove the relay from the account's relays "
                                                    "if it keeps refusing"))
    return Verdict(kind, fix)


def describe(relay: str, answer: dict) -> str:
    """One relay's answer as a line for the log, the delivery's error and `status`."""
    verdict = judge(answer)
    if verdict.kind == "accepted":
        return f"{relay}: accepted"
    said = answer.get("message") or "OK false without a reason"
    what = "no answer" if not answer.get("reached", True) else "refused"
    return f"{relay}: {what} ({said}) — fix: {verdict.fix}"


def accepted(relays: dict, event_id: str) -> list[str]:
    return [url for url, answers in relays.items() if judge(answers.get(event_id) or {"reached": False}).kind == "accepted"]


def outcome(relays: dict, event_ids: list[str], min_relays: int) -> PublishError | None:
    """None when every event has min_relays acceptances; else the error the delivery engine acts on."""
    short = [event_id for event_id in event_ids if len(accepted(relays, event_id)) < min_relays]
    if not short:
        return None
    lines, hopeful, kinds = [], True, set()
    for event_id in short:
        verdicts = {url: judge(answers.get(event_id) or {"reached": False}) for url, answers in relays.items()}
        possible = sum(1 for verdict in verdicts.values() if verdict.kind in ("accepted", "transient", "rate"))
        hopeful = hopeful and possible >= min_relays
        kinds |= {verdict.kind for verdict in verdicts.values() if verdict.kind != "accepted"}
        lines += [describe(url, answers.get(event_id) or {"reached": False}) for url, answers in relays.items()
                  if verdicts[url].kind != "accepted"]
    summary = (f"accepted by fewer than min_relays = {min_relays} relay(s): " + "; ".join(dict.fromkeys(lines)))
    if hopeful:
        return RateLimited(summary) if kinds == {"rate"} else TransientPublishError(summary)
    final = kinds - {"transient", "rate"}
    if final == {"access"}:
        return AuthError(summary, "allow your key on the relays named, or change the account's relays")
    nothing_taken = all(not accepted(relays, event_id) for event_id in event_ids)
    return PermanentPublishError(summary, not_posted=nothing_taken)
