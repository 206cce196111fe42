"""What `bridge status` shows of a Mastodon account: its server, as last read (the limits cached in the state),
and how to resolve posts held with an unknown outcome on it."""

from __future__ import annotations


def account_status(name: str, account, info: dict) -> dict:
    return {"server": _server(info)}


def _server(info: dict) -> dict | None:
    limits = info["limits"]
    if not isinstance(limits, dict):
        return None
    return {key: limits.get(key) for key in ("software", "software_version", "version", "profile", "max_characters",
                                             "counting", "urls_in_full")} | {"default_limits": limits.get("source") == "defaults"}


def held_posts_fix(name: str, account, info: dict) -> str:
    from bridge.platforms.mastodon.servers import profile_named
    from bridge.platforms.mastodon.target import unknown_fix

    return unknown_fix(name, account.instance_url, profile_named((info["limits"] or {}).get("profile")))


def status_text(account: dict) -> list[str]:
    """The server's lines of an account in `bridge status`'s text."""
    server = account.get("server")
    if not server:
        return []
    software = " ".join(str(part) for part in (server["software"], server["software_version"]) if part)
    lines = [f"    server: {software or 'not known'} (profile {server['profile']}), "
             f"max {server['max_characters']} characters counted in {server['counting']}"
             + (", URLs in full" if server["urls_in_full"] else "")]
    if server["default_limits"]:
        lines.append("    limits: Mastodon's defaults -- the server answers neither /api/v2/instance nor "
                     "/api/v1/instance; fix: check the account's instance address (https://host, no path)")
    return lines
