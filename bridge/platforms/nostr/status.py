"""What `bridge status` shows of a Nostr account: its key's npub and each relay's last answer, with the fix."""

from __future__ import annotations


def account_status(name: str, account, info: dict) -> dict:
    latest = (info.get("platform_status") or {}).get("relays") or []
    notes = []
    for answer in latest:
        what = "article" if answer["kind"] != 1 else "note"
        if answer["ok"]:
            notes.append(f"relay {answer['relay']}: {what} accepted")
        else:
            notes.append(f"relay {answer['relay']}: {what} REFUSED ({answer['message']}) — fix: {answer['fix']}")
    return {"relays": latest, "notes": notes}
