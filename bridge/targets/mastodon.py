"""Publishing to a Mastodon account through Mastodon.py.

- Mastodon.py is set up for a daemon: version_check_mode="none" (its version check can recurse forever when
  the instance endpoint fails), ratelimit_method="throw" (its default sleeps and retries forever) and short,
  deliberate timeouts instead of its 300 s default. bridge does its own backoff.
- Every status carries the delivery's stable Idempotency-Key, so a retry within Mastodon's one-hour window
  returns the original status instead of a second one. Past that window, find_existing() looks for the
  permalink among the account's own recent statuses.
- The instance's limits come from /api/v2/instance (v1 as fallback), cached in the state for a day, and are
  handed to the renderer.

Errors: 422 -> PermanentPublishError (server's message kept); 401/403 -> AuthError (account paused with the
fix); 429 -> RateLimited until X-RateLimit-Reset; 5xx, timeouts, connection errors -> TransientPublishError.
"""

from __future__ import annotations

import io
import logging
import time
from datetime import datetime, timezone

from dataclasses import asdict

from bridge.config import AccountConfig, Secret
from bridge.errors import AuthError, PermanentPublishError, RateLimited, TransientPublishError
from bridge.faults import crash_point
from bridge.render.limits import MastodonLimits
from bridge.state import DeliveryRow, State
from bridge.targets.base import Published

log = logging.getLogger("bridge.mastodon")

CONNECT_TIMEOUT = 10.0
READ_TIMEOUT = 30.0
LIMITS_MAX_AGE = 86400.0
IDEMPOTENCY_WINDOW = 3600.0
# Stay well inside the window: clocks differ, and the key is stored only once the create succeeded.
IDEMPOTENCY_SAFE = IDEMPOTENCY_WINDOW - 600.0
MEDIA_POLL_INTERVAL = 1.0
MEDIA_POLL_MAX_SECONDS = 120.0
RECENT_STATUSES_TO_SEARCH = 40
TOKEN_FIX = (
    "create a new access token with the scopes write:statuses write:media (Preferences > Development > "
    "New application, or `bridge login mastodon --instance URL`) and put it where access_token points "
    "(or in $CREDENTIALS_DIRECTORY/{account})"
)
DEFAULT_LIMITS = asdict(MastodonLimits())


class MastodonTarget:
    platform = "mastodon"

    def __init__(self, account: str, settings: AccountConfig, token: Secret, state: State, *,
                 clock=time.time, sleep=time.sleep, media_fetcher=None, user_agent: str = "bridge") -> None:
        from mastodon import Mastodon

        self.account = account
        self.settings = settings
        self.state = state
        self.clock = clock
        self.sleep = sleep
        self.media_fetcher = media_fetcher
        self.api = Mastodon(
            access_token=token.reveal(),
            api_base_url=settings.instance_url,
            version_check_mode="none",
            ratelimit_method="throw",
            request_timeout=(CONNECT_TIMEOUT, READ_TIMEOUT),
            user_agent=user_agent,
        )
        self._me_id: str | None = None

    # --- limits ----------------------------------------------------------------------------------------------

    def render_limits(self) -> dict:
        cached = self.state.account(self.account)
        if cached["limits"] and self.clock() - (cached["limits_fetched_at"] or 0) < LIMITS_MAX_AGE:
            return cached["limits"]
        try:
            limits = self.fetch_limits()
        except TransientPublishError as exc:
            log.warning("account %s: cannot read the instance's limits (%s); using %s", self.account, exc,
                        "the cached ones" if cached["limits"] else "Mastodon's defaults")
            return cached["limits"] or dict(DEFAULT_LIMITS)
        self.state.save_limits(self.account, limits, self.clock())
        return limits

    def fetch_limits(self) -> dict:
        """Read max_characters and friends from /api/v2/instance, falling back to /api/v1/instance."""
        with self._translate("reading the instance"):
            try:
                info = self.api.instance_v2()
            except Exception as exc:  # an old server without v2: 404 or an unparseable answer
                from mastodon import MastodonNetworkError, MastodonServerError

                if isinstance(exc, (MastodonNetworkError, MastodonServerError)):
                    raise
                info = self.api.instance_v1()
        return limits_from_instance(info)

    # --- publishing ------------------------------------------------------------------------------------------

    def publish(self, delivery: DeliveryRow, payload: dict) -> Published:
        media_ids = [self._upload(item) for item in payload.get("media") or []]
        with self._translate("posting"):
            status = self.api.status_post(
                payload["status"],
                spoiler_text=payload.get("spoiler_text") or None,
                visibility=payload.get("visibility") or None,
                language=payload.get("language") or None,
                media_ids=media_ids or None,
                idempotency_key=delivery.idempotency_key,
            )
        return Published(remote_id=str(status["id"]), url=status.get("url") or status.get("uri"))

    def _upload(self, item: dict) -> str:
        """Upload one image with its alt text and wait, boundedly, until the server has processed it."""
        if self.media_fetcher is None:
            raise PermanentPublishError("image attachments need a media fetcher")
        image = self.media_fetcher(item["url"])
        limits = self.render_limits()
        description = (item.get("description") or "")[: limits.get("description_limit", 1500)]
        with self._translate("uploading an image"):
            media = self.api.media_post(io.BytesIO(image.data), mime_type=image.mime_type, description=description,
                                        file_name="image", synchronous=False)
            crash_point("mid-media-upload")
            deadline = self.clock() + MEDIA_POLL_MAX_SECONDS
            while not media.get("url"):
                if self.clock() > deadline:
                    raise TransientPublishError("the instance is still processing the image; trying again later")
                self.sleep(MEDIA_POLL_INTERVAL)
                media = self.api.media(media["id"])
        return str(media["id"])

    def find_existing(self, delivery: DeliveryRow) -> Published | None:
        """Within the idempotency window a retry with the same key is safe (None); past it, search our statuses."""
        first = delivery.first_sent_at or delivery.sending_at
        if first is not None and self.clock() - first < IDEMPOTENCY_SAFE:
            return None
        if not delivery.link:
            return None
        with self._translate("looking for an earlier post"):
            if self._me_id is None:
                self._me_id = str(self.api.account_verify_credentials()["id"])
            statuses = self.api.account_statuses(self._me_id, limit=RECENT_STATUSES_TO_SEARCH)
        for status in statuses:
            card = status.get("card") or {}
            if delivery.link in (status.get("content") or "") or card.get("url") == delivery.link:
                log.info("account %s: %s was already posted as %s", self.account, delivery.link, status.get("url"))
                return Published(remote_id=str(status["id"]), url=status.get("url") or status.get("uri"))
        return None

    def edit(self, delivery: DeliveryRow, payload: dict) -> Published:
        """Mastodon's edit replaces everything: keep the attached media and the content warning explicitly."""
        with self._translate("editing"):
            current = self.api.status(delivery.remote_id)
            media_ids = [str(media["id"]) for media in current.get("media_attachments") or []]
            status = self.api.status_update(
                delivery.remote_id,
                status=payload["status"],
                spoiler_text=payload.get("spoiler_text") or None,
                sensitive=bool(payload.get("spoiler_text")) or None,
                media_ids=media_ids or None,
            )
        return Published(remote_id=str(status["id"]), url=status.get("url") or status.get("uri"))

    def whoami(self) -> dict:
        with self._translate("checking the token"):
            me = self.api.account_verify_credentials()
        return {"id": str(me["id"]), "acct": me.get("acct"), "url": me.get("url")}

    def close(self) -> None:
        try:
            self.api.session.close()
        except Exception:
            pass

    # --- errors ----------------------------------------------------------------------------------------------

    def _translate(self, doing: str):
        return _Translate(self, doing)


class _Translate:
    """Turns Mastodon.py's exceptions into bridge's PublishError tree."""

    def __init__(self, target: MastodonTarget, doing: str) -> None:
        self.target = target
        self.doing = doing

    def __enter__(self):
        return self

    def __exit__(self, kind, exc, tb) -> bool:
        if exc is None:
            return False
        from mastodon import MastodonAPIError, MastodonNetworkError, MastodonRatelimitError, MastodonServerError

        account = self.target.account
        where = self.target.settings.instance_url
        if isinstance(exc, MastodonRatelimitError):
            reset = self.target.api.ratelimit_reset
            retry_at = datetime.fromtimestamp(reset, timezone.utc) if reset and reset > time.time() else None
            raise RateLimited(f"{where} rate limit reached while {self.doing}", retry_at=retry_at) from None
        if isinstance(exc, MastodonNetworkError):
            raise TransientPublishError(f"{where} unreachable while {self.doing}: {_short(exc)}") from None
        if isinstance(exc, MastodonServerError):
            raise TransientPublishError(f"{where} answered HTTP {_status(exc)} while {self.doing}") from None
        if isinstance(exc, MastodonAPIError):
            status = _status(exc)
            message = _message(exc)
            if status in (401, 403):
                raise AuthError(f"{where} refused the access token of account {account!r} (HTTP {status}: {message})",
                                TOKEN_FIX.format(account=account)) from None
            if status == 429:
                raise RateLimited(f"{where} rate limit reached while {self.doing}") from None
            if status in (408, 409, 425):
                raise TransientPublishError(f"{where} answered HTTP {status} while {self.doing}: {message}") from None
            raise PermanentPublishError(f"{where} rejected the post (HTTP {status}): {message}") from None
        return False


def _status(exc) -> int | None:
    return exc.args[1] if len(exc.args) > 1 and isinstance(exc.args[1], int) else None


def _message(exc) -> str:
    return str(exc.args[3]) if len(exc.args) > 3 and exc.args[3] else str(exc.args[0])


def _short(exc) -> str:
    text = str(exc)
    return text if len(text) < 200 else text[:200] + "…"


def limits_from_instance(info) -> dict:
    """The renderer's view of an instance, from a v2 (or v1) instance answer; Mastodon's defaults fill gaps."""
    limits = asdict(MastodonLimits.from_instance(dict(info)))
    limits["version"] = info.get("version")
    return limits
