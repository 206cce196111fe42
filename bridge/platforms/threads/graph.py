"""One request to Meta's Threads API (graph.threads.net), and Meta's error bodies translated into bridge.errors.

Meta answers a failed call with {"error": {"message", "type", "code", "error_subcode", "fbtrace_id"}}
(https://developers.facebook.com/docs/graph-api/guides/error-handling). The codes bridge acts on:
190 (and 102) a token expired or revoked -> AuthError; 10 and 200-299 a permission missing -> AuthError;
4, 17, 32, 613 too many calls -> RateLimited; 1, 2 and any 5xx Meta's own trouble -> TransientPublishError;
anything else a 4xx: the request itself refused (invalid parameters, too many links) -> PermanentPublishError
with Meta's own words.
"""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone

import httpx

from bridge.errors import AuthError, PermanentPublishError, RateLimited, TooLong, TransientPublishError
from bridge.redact import redact

API_VERSION = "v1.0"
TOKEN_CODES = {102, 190}
PERMISSION_CODES = {10} | set(range(200, 300))
RATE_LIMIT_CODES = {4, 17, 32, 613}
TEMPORARY_CODES = {1, 2}
GONE_SUBCODE = 33  # with code 100: "Object with ID ... does not exist" (a deleted post, an unknown id)
# Words of a text refused for its length (Meta documents no code of its own for it)
_TOO_LONG_WORDS = ("too long", "exceeds the maximum", "character limit")


def login_fix(account: str) -> str:
    return (f"run `bridge login threads --account {account} --app-id YOUR_THREADS_APP_ID --write-token PATH`, "
            f"point accounts.{account}.access_token at the new token (file = \"PATH\"), then `bridge resume {account}`")


class ObjectGone(PermanentPublishError):
    """Meta knows no object of that id (code 100, subcode 33): a deleted post, an expired container."""


class Graph:
    """The API for one account: `call` returns the JSON answer or raises bridge.errors' PublishError tree."""

    def __init__(self, base_url: str, account: str, *, user_agent: str | None, connect_timeout: float,
                 read_timeout: float, total_timeout: float, clock) -> None:
        from bridge.deadline import DeadlineTransport  # one deadline per request: a dripping server holds nobody

        self.base_url = base_url.rstrip("/")
        self.account = account
        self.clock = clock
        self.http = httpx.Client(timeout=httpx.Timeout(read_timeout, connect=connect_timeout),
                                 transport=DeadlineTransport(total_timeout),
                                 headers={"User-Agent": user_agent} if user_agent else {})

    def call(self, method: str, path: str, params: dict, *, versioned: bool = True) -> dict:
        """`params` travel as the query (GET, DELETE) or a form body (POST), as Meta's examples send them."""
        url = f"{self.base_url}/{API_VERSION}/{path.lstrip('/')}" if versioned else f"{self.base_url}/{path.lstrip('/')}"
        clean = {key: value for key, value in params.items() if value is not None}
        try:
            if method == "GET":
                response = self.http.get(url, params=clean)
            elif method == "DELETE":
                response = self.http.delete(url, params=clean)
            else:
                response = self.http.post(url, data=clean)
        except httpx.TransportError as exc:
            raise TransientPublishError(f"Threads API at {self.base_url} did not answer: {type(exc).__name__}: "
                                        f"{redact(str(exc))}") from None
        try:
            body = response.json()
        except ValueError:
            body = None
        if response.status_code == 200 and isinstance(body, dict) and "error" not in body:
            return body
        raise self.translate(response, body)

    def translate(self, response: httpx.Response, body) -> Exception:
        error = body.get("error") if isinstance(body, dict) and isinstance(body.get("error"), dict) else {}
        code = error.get("code")
        words = redact(" ".join(str(part) for part in (error.get("message"), error.get("error_user_msg")) if part)
                       or f"HTTP {response.status_code}: {response.text[:200]}")
        said = f"Threads said: {words} (code {code}" + (f", subcode {error['error_subcode']}" if error.get("error_subcode") else "") + ")"
        if code in TOKEN_CODES or (error.get("type") == "OAuthException" and response.status_code == 401):
            return AuthError(f"the Threads access token was refused (expired or revoked). {said}", login_fix(self.account))
        if code in PERMISSION_CODES:
            return AuthError(f"the Threads token lacks a permission. {said}",
                             "grant threads_basic and threads_content_publish (threads_delete too with "
                             "follow_deletes): " + login_fix(self.account))
        if code in RATE_LIMIT_CODES or response.status_code == 429:
            return RateLimited(f"Threads is limiting calls. {said}", retry_at=self.retry_at(response))
        if code in TEMPORARY_CODES or response.status_code >= 500:
            return TransientPublishError(f"Threads had trouble. {said}")
        if code == 100 and error.get("error_subcode") == GONE_SUBCODE:
            return ObjectGone(f"Threads knows no such object. {said}", not_posted=True)
        if any(marker in words.lower() for marker in _TOO_LONG_WORDS):
            return TooLong(said)
        return PermanentPublishError(f"Threads refused the post. {said}", not_posted=True)

    def retry_at(self, response: httpx.Response) -> datetime | None:
        """When calls are welcome again: Retry-After (seconds), else the longest estimated_time_to_regain_access
        (minutes) in X-Business-Use-Case-Usage; None: the engine's retry_delay."""
        now = datetime.fromtimestamp(self.clock(), timezone.utc)
        retry_after = response.headers.get("Retry-After", "")
        if retry_after.strip().isdigit():
            return now + timedelta(seconds=int(retry_after))
        try:
            usage = json.loads(response.headers.get("X-Business-Use-Case-Usage") or "{}")
            minutes = max((int(item.get("estimated_time_to_regain_access") or 0)
                           for items in usage.values() for item in items), default=0)
        except (ValueError, TypeError, AttributeError):
            minutes = 0
        return now + timedelta(minutes=minutes) if minutes else None

    def close(self) -> None:
        self.http.close()
