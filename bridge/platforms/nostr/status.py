"""What `bridge status` shows of a Nostr account: its key's npub and each relay's last answer, with the fix."""

from __future__ import annotations


def account_status(name: str, account, info: dict) -> dict:
    return {"relays": (info.get("platform_status") or {}).get("relays") or []}


def status_text(report: dict) -> list[str]:
    lines = []
    for answer in report.get("relays") or []:
        what = "article" if answer["kind"] != 1 else "note"
        if answer["ok"]:
            lines.append(f"    relay {answer['relay']}: {what} accepted")
        else:
            lines.append(f"    relay {answer['relay']}: {what} REFUSED ({answer['message']}) — fix: {answer['fix']}")
    return lines


def held_posts_fix(name: str, account, info: dict) -> str:
    return f"`bridge retry --force --account {name}`: sending the same signed events again cannot post twice"
