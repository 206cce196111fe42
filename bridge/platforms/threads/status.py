"""What `bridge status` and `bridge doctor` show of a Threads account: who it is, the token's expiry, the quota."""

from __future__ import annotations

import time

from bridge.platforms.threads.tokens import kept_record


def _day(epoch: float | None) -> str:
    return time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(epoch)) if epoch else "unknown"


def account_status(name: str, account, info: dict) -> dict:
    facts = info.get("platform_status") or {}
    kept = kept_record(info.get("session"))
    return {"username": facts.get("username"), "token_expires_at": kept.get("expires_at"),
            "token_refreshed_at": kept.get("refreshed_at"), "quota": facts.get("quota")}


def status_text(report: dict) -> list[str]:
    lines = []
    if report.get("username"):
        lines.append(f"    threads user @{report['username']}")
    lines.append(f"    token valid until {_day(report.get('token_expires_at'))}"
                 + (f" (refreshed {_day(report['token_refreshed_at'])})" if report.get("token_refreshed_at") else
                    " (not refreshed yet: bridge refreshes it once it is a day old)"))
    quota = report.get("quota")
    if quota:
        lines.append(f"    publishing quota {quota['quota_usage']}/{quota['quota_total']} posts in 24 hours")
    return lines


def doctor_details(diagnosis: dict) -> list[str]:
    if not diagnosis.get("token_expires_at"):
        return []
    return [f"token valid until {_day(diagnosis['token_expires_at'])} (refreshed daily once it is a day old)"]


def held_posts_fix(name: str, account, info: dict) -> str:
    return (f"look at the account's Threads profile; `bridge retry --force --account {name}` asks Threads for each "
            "post's container again and publishes only a container that was never published")
