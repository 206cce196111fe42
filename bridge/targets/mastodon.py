"""Publishing to a Mastodon account through Mastodon.py.

- Mastodon.py is set up for a daemon: version_check_mode="none" (its version check can recurse forever when
  the instance endpoint fails), ratelimit_method="throw" (its default sleeps and retries forever) and short,
  deliberate timeouts instead of its 300 s default; bridge does its own backoff. Its idea of the server's
  version is pinned (PINNED_API_VERSION): otherwise media_post() asks /api/v1/instance before every upload,
  and when that fails it silently falls back to the synchronous /api/v1/media of 2019.
- Every status carries the delivery's stable Idempotency-Key (an HTTP header), so a retry within Mastodon's
  one-hour window returns the original status instead of making a second one. Past that window,
  find_existing() looks for the permalink among the account's own recent statuses. That needs the optional
  scopes read:accounts + read:statuses; a token without them (403) is not an auth failure: the lookup is
  skipped with a warning and the retry relies on the Idempotency-Key alone.
- The instance's limits come from /api/v2/instance (v1 as fallback), cached in the state for a day, and are
  handed to the renderer (render_limits()).
- Images (attach_image): fetched with media_fetcher, uploaded with their alt text, and polled -- a bounded
  number of times -- until the server has processed them (202 -> 206... -> 200). An image that cannot be
  fetched or is refused (422/413) is left out: the post goes out without it rather than not at all.
- diagnose() (for `bridge doctor`): the token (which account; whether it may post -- a blank status is sent,
  which Mastodon refuses with 422 after the scope check, so nothing is created), instance version and limits.

Errors (bridge.errors):

    MastodonRatelimitError (429)             -> RateLimited, retry_at from X-RateLimit-Reset
    MastodonNetworkError (timeout, refused)  -> TransientPublishError (retried with the same Idempotency-Key)
    MastodonServerError (5xx), no JSON       -> TransientPublishError
    401, 403                                 -> AuthError with the fix (the account is paused, posts stay queued)
                                                (but 403 while looking for an earlier post: lookup skipped)
    408, 409, 425                            -> TransientPublishError
    other 4xx (422 validation, 404...)       -> PermanentPublishError with the server's message
    Mastodon.py's own ValueError (visibility) -> PermanentPublishError

Instance limits: unreachable and never read -> TransientPublishError (the post is rendered later); unreachable
with a stale cache -> the cache; no instance endpoint at all (404) -> Mastodon's defaults. A content warning
is sent with sensitive=true (Mastodon 4.7 no longer implies it), so an image stays behind the warning.
"""

from __future__ import annotations

import html.parser
import io
import logging
import time
import warnings
from dataclasses import asdict
from datetime import datetime, timezone
from urllib.parse import unquote, urlsplit

from bridge.config import AccountConfig, Secret
from bridge.errors import AuthError, PermanentPublishError, RateLimited, TransientPublishError
from bridge.faults import crash_point
from bridge.render import graphemes
from bridge.render.limits import MastodonLimits
from bridge.state import DeliveryRow, State
from bridge.targets.base import Published

log = logging.getLogger("bridge.mastodon")

CONNECT_TIMEOUT = 10.0
READ_TIMEOUT = 30.0
LIMITS_MAX_AGE = 86400.0
# Mastodon remembers an Idempotency-Key for one hour, from the successful create (platform-rules.md).
# Stay well inside it: clocks differ.
IDEMPOTENCY_WINDOW = 3600.0
IDEMPOTENCY_SAFE = IDEMPOTENCY_WINDOW - 600.0
# Looking for an earlier post: pages of the account's own statuses, newest first, back to the first attempt.
STATUSES_PAGE_SIZE = 40  # the API's maximum
STATUSES_MAX_PAGES = 5
LOOKUP_SLACK = 3600.0  # server and local clocks may differ
# Media processing (video, GIF, audio; images are usually done at once): bounded polling.
MEDIA_POLL_DELAYS = (0.5, 1.0, 1.0, 2.0, 2.0, 3.0, 5.0, 5.0, 5.0, 5.0, 10.0, 10.0, 10.0, 10.0)  # ~70 s in all
PINNED_API_VERSION = (4, 0, 0)  # every server bridge supports has /api/v2/media and /api/v2/instance
WRITE_SCOPES = "write:statuses write:media"
READ_SCOPES = "read:accounts read:statuses"
TOKEN_FIX = (
    "create a new access token with the scopes " + WRITE_SCOPES + " (optionally also " + READ_SCOPES + ") -- "
    "`bridge login mastodon --instance URL`, or Preferences > Development > New application -- and put it where "
    "accounts.{account}.access_token points (or in $CREDENTIALS_DIRECTORY/{account})"
)
READ_SCOPES_HINT = (
    "the token lacks the optional scopes " + READ_SCOPES + ": after an unknown outcome older than an hour bridge "
    "cannot look for an earlier post and relies on the Idempotency-Key alone; a token with them avoids "
    "a possible double post (`bridge login mastodon --instance URL --read-scopes`)"
)
NOT_FOUND_HINT = (" -- the status posted earlier for this entry (same Idempotency-Key) was deleted, or the "
                  "instance URL does not lead to a Mastodon server")
DEFAULT_LIMITS = asdict(MastodonLimits())


class MastodonTarget:
    platform = "mastodon"

    def __init__(self, account: str, settings: AccountConfig, token: Secret, state: State, *,
                 clock=time.time, sleep=time.sleep, media_fetcher=None, user_agent: str = "bridge",
                 timeout: tuple[float, float] = (CONNECT_TIMEOUT, READ_TIMEOUT)) -> None:
        from mastodon import Mastodon

        self.account = account
        self.settings = settings
        self.instance_url = settings.instance_url
        self.state = state
        self.clock = clock
        self.sleep = sleep
        self.media_fetcher = media_fetcher
        self.api = Mastodon(
            access_token=token.reveal(),
            api_base_url=self.instance_url,
            version_check_mode="none",
            mastodon_version=".".join(map(str, PINNED_API_VERSION)),
            ratelimit_method="throw",
            request_timeout=timeout,
            user_agent=user_agent,
        )
        # With version_check_mode="none" Mastodon.py records the version as known but leaves it at 1.0.0.
        self.api.mastodon_major, self.api.mastodon_minor, self.api.mastodon_patch = PINNED_API_VERSION
        self._me_id: str | None = None
        self._uploads: dict[tuple[int, str], str] = {}  # (delivery id, image URL) -> media id still processing

    # --- limits ----------------------------------------------------------------------------------------------

    def render_limits(self) -> dict:
        """The instance's limits for the renderer: the cached ones when younger than a day, else read anew."""
        cached = self.state.account(self.account)
        limits = cached["limits"] if (cached["limits"] or {}).get("instance") == self.instance_url else None
        if limits and self.clock() - (cached["limits_fetched_at"] or 0) < LIMITS_MAX_AGE:
            return limits
        try:
            fresh = self.fetch_limits()
        except TransientPublishError as exc:
            if limits is None:
                raise  # no limits at all: render later rather than guess (the instance is probably down anyway)
            log.warning("account %s: cannot read the instance's limits (%s); using the cached ones", self.account, exc)
            return limits
        except PermanentPublishError as exc:  # a server without either instance endpoint: Mastodon's defaults
            log.warning("account %s: %s; using Mastodon's default limits", self.account, exc)
            fresh = {**DEFAULT_LIMITS, "version": None, "instance": self.instance_url}
        self.state.save_limits(self.account, fresh, self.clock())
        return fresh

    def fetch_limits(self) -> dict:
        """max_characters and friends from /api/v2/instance, falling back to /api/v1/instance."""
        from mastodon import MastodonAPIError, MastodonNetworkError, MastodonRatelimitError

        with self._translate("reading the instance's limits"):
            try:
                info = self.api.instance_v2()
            except (MastodonNetworkError, MastodonRatelimitError):
                raise
            except MastodonAPIError as exc:  # an older server or a fork without v2 (404, 5xx, not JSON)
                if _status(exc) in (401, 403):
                    raise
                log.info("account %s: %s has no usable /api/v2/instance (%s); trying v1", self.account,
                         self.instance_url, _short(exc))
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")  # v1 is deprecated: that is why it is the fallback
                    info = self.api.instance_v1()
        limits = limits_from_instance(info)
        limits["instance"] = self.instance_url
        return limits

    # --- publishing ------------------------------------------------------------------------------------------

    def publish(self, delivery: DeliveryRow, payload: dict) -> Published:
        media_ids = self._attach(delivery, payload.get("media") or [])
        spoiler_text = payload.get("spoiler_text") or ""
        with self._translate("posting"):
            status = self._post_status(
                payload["status"],
                spoiler_text=spoiler_text or None,
                # Mastodon 4.7 no longer marks a post with a content warning sensitive by itself; older
                # servers did. Say it, so that an attached image stays hidden behind the warning everywhere.
                sensitive=bool(spoiler_text),
                visibility=payload.get("visibility") or None,
                language=payload.get("language") or None,
                media_ids=media_ids or None,
                idempotency_key=delivery.idempotency_key,
            )
        return _published(status)

    def _post_status(self, text: str, **params):
        from mastodon import MastodonIllegalArgumentError

        try:
            return self.api.status_post(text, **params)
        except (ValueError, MastodonIllegalArgumentError) as exc:  # Mastodon.py checks visibility itself
            raise PermanentPublishError(f"the stored post is not valid for Mastodon: {exc}") from None

    def _attach(self, delivery: DeliveryRow, items: list[dict]) -> list[str]:
        if not items:
            return []
        limits = self.render_limits()
        media_ids = []
        for item in items[: limits.get("max_media_attachments", DEFAULT_LIMITS["max_media_attachments"])]:
            media_id = self._media_id((delivery.id, item["url"]), item, limits)
            if media_id is not None:
                media_ids.append(media_id)
        return media_ids

    def _media_id(self, key: tuple[int, str], item: dict, limits: dict) -> str | None:
        """The id of the processed upload of one image; None when the post must go without it."""
        media_id = self._uploads.pop(key, None)  # still processing when the last attempt gave up waiting
        if media_id is not None and self._processed(key, media_id):
            return media_id
        media = self._upload(item, limits)
        if media is None:
            return None
        media_id = str(media["id"])
        if media.get("url") or self._processed(key, media_id):
            return media_id
        raise TransientPublishError(f"{self.instance_url} lost the media {media_id} while processing it")

    def _upload(self, item: dict, limits: dict):
        """Upload one image with its alt text; None when it cannot be had (the post goes without it)."""
        from mastodon import MastodonAPIError, MastodonIllegalArgumentError, MastodonServerError

        if self.media_fetcher is None:
            log.warning("account %s: no way to fetch images here; posting without %s", self.account, item["url"])
            return None
        try:
            image = self.media_fetcher(item["url"])
        except Exception as exc:  # LinkPreviewError and friends: the image is optional, the post is not
            log.warning("account %s: cannot fetch the image %s (%s); posting without it", self.account, item["url"], exc)
            return None
        description = _fit_description(item.get("description") or "", limits.get("description_limit"))
        try:
            with self._translate("uploading an image"):
                try:
                    media = self.api.media_post(io.BytesIO(image.data), mime_type=image.mime_type,
                                                description=description or None, file_name="image")
                except MastodonIllegalArgumentError as exc:
                    raise PermanentPublishError(str(exc)) from None
                except MastodonAPIError as exc:
                    status = _status(exc)
                    if isinstance(exc, MastodonServerError) or status in (401, 403, 408, 429) or status is None:
                        raise
                    raise PermanentPublishError(f"HTTP {status}: {_message(exc)}") from None
        except PermanentPublishError as exc:  # 422 (type, size, alt text), 413: leave the image out
            log.warning("account %s: %s refused the image %s (%s); posting without it", self.account,
                        self.instance_url, item["url"], exc)
            return None
        crash_point("mid-media-upload")
        return media

    def _processed(self, key: tuple[int, str], media_id: str) -> bool:
        """Poll GET /api/v1/media/:id (206 while processing, 200 when done) a bounded number of times.

        False when the media is gone (404); after the last poll the id is kept for the next attempt and
        TransientPublishError raised.
        """
        from mastodon import MastodonNotFoundError

        with self._translate("waiting for media to be processed"):
            for delay in (0.0, *MEDIA_POLL_DELAYS):
                if delay:
                    self.sleep(delay)
                try:
                    media = self.api.media(media_id)
                except MastodonNotFoundError:
                    return False
                if media.get("url"):
                    return True
        self._uploads[key] = media_id
        raise TransientPublishError(f"{self.instance_url} is still processing media {media_id}; trying again later")

    def find_existing(self, delivery: DeliveryRow) -> Published | None:
        """After an unknown outcome: within the idempotency window a retry with the same key is safe (None);
        past it, look for the permalink among the account's own recent statuses."""
        first = delivery.first_sent_at or delivery.sending_at
        if first is None:
            return None  # never sent: nothing to find
        if self.clock() - first < IDEMPOTENCY_SAFE:
            return None
        links = _candidate_links(delivery)
        if not links:
            return None
        statuses = self._own_statuses_since(first - LOOKUP_SLACK)
        if statuses is None:
            log.warning("account %s: cannot look for an earlier post of %s (HTTP 403): %s; posting again with the "
                        "same Idempotency-Key", self.account, delivery.link or delivery.entry_key, READ_SCOPES_HINT)
            return None
        for status in statuses:
            if links & _status_links(status):
                found = _published(status)
                log.info("account %s: %s was already posted as %s", self.account, delivery.link, found.url)
                return found
        return None

    def _own_statuses_since(self, since: float) -> list | None:
        """The account's statuses, newest first, back to `since`; None when the token may not read them."""
        from mastodon import MastodonAPIError

        found: list = []
        with self._translate("looking for an earlier post"):
            try:
                if self._me_id is None:
                    self._me_id = str(self.api.account_verify_credentials()["id"])
                max_id = None
                for _ in range(STATUSES_MAX_PAGES):
                    page = self.api.account_statuses(self._me_id, limit=STATUSES_PAGE_SIZE, max_id=max_id,
                                                     exclude_reblogs=True)
                    found.extend(page)
                    if len(page) < STATUSES_PAGE_SIZE or _timestamp(page[-1].get("created_at")) < since:
                        break
                    max_id = str(page[-1]["id"])
            except MastodonAPIError as exc:
                if _status(exc) != 403:
                    raise
                return None  # a token without read:accounts / read:statuses: not an auth failure
        return found

    def edit(self, delivery: DeliveryRow, payload: dict) -> Published:
        """Mastodon's edit replaces everything: the content warning is sent again, and the media attached to the
        status are kept (reading them needs read:statuses; without it an edit of a post with media is refused
        here rather than dropping its image)."""
        from mastodon import MastodonAPIError

        spoiler_text = payload.get("spoiler_text") or ""
        media_ids: list[str] = []
        with self._translate("editing"):
            if payload.get("media"):
                try:
                    current = self.api.status(delivery.remote_id)
                except MastodonAPIError as exc:
                    if _status(exc) != 403:
                        raise
                    raise PermanentPublishError(f"editing a post with media needs the scope read:statuses, which "
                                                f"the token of account {self.account!r} lacks") from None
                media_ids = [str(media["id"]) for media in current.get("media_attachments") or []]
            status = self.api.status_update(
                delivery.remote_id,
                status=payload["status"],
                spoiler_text=spoiler_text,
                sensitive=bool(spoiler_text),
                media_ids=media_ids or None,
            )
        return _published(status)

    # --- bridge doctor ---------------------------------------------------------------------------------------

    def diagnose(self) -> dict:
        """The token (which account, may it post, may it read), the instance's version and limits.

        Raises AuthError when the token is refused or may not post, TransientPublishError when the instance
        cannot be reached.
        """
        from mastodon import MastodonAPIError

        limits = self.fetch_limits()
        self.state.save_limits(self.account, limits, self.clock())
        report = {
            "instance": self.instance_url,
            "version": limits.get("version"),
            "limits": {key: limits[key] for key in DEFAULT_LIMITS},
            "account": None,
            "account_url": None,
            "can_post": False,
            "can_read": False,
            "notes": [],
        }
        with self._translate("checking the token"):
            try:
                me = self.api.account_verify_credentials()
                report["account"] = "@" + me["acct"]
                report["account_url"] = me.get("url")
                self._me_id = str(me["id"])
                self.api.account_statuses(self._me_id, limit=1)
                report["can_read"] = True
            except MastodonAPIError as exc:
                if _status(exc) != 403:
                    raise
            report["can_post"] = self._may_post()
        if not report["can_post"]:
            raise AuthError(f"the access token of account {self.account!r} may not post on {self.instance_url} "
                            "(it lacks the scope write:statuses)", TOKEN_FIX.format(account=self.account))
        if report["account"] is None:
            report["notes"].append("the token works for posting but cannot read the profile, so which account it "
                                   "belongs to cannot be shown (optional scope read:accounts)")
        if not report["can_read"]:
            report["notes"].append(READ_SCOPES_HINT)
        return report

    def _may_post(self) -> bool:
        """Send a blank status: Mastodon checks the token's scopes first (403), then refuses blank text (422)."""
        from mastodon import MastodonAPIError

        try:
            created = self.api.status_post("", visibility="direct")
        except MastodonAPIError as exc:
            if _status(exc) == 422:
                return True
            if _status(exc) == 403:
                return False
            raise
        log.warning("account %s: %s accepted a blank status; deleting it", self.account, self.instance_url)
        self.api.status_delete(created["id"])
        return True

    def close(self) -> None:
        try:
            self.api.session.close()
        except Exception:  # closing is best effort
            log.debug("closing the Mastodon session failed", exc_info=True)

    # --- errors ----------------------------------------------------------------------------------------------

    def _translate(self, doing: str) -> "_Translate":
        return _Translate(self, doing)


class _Translate:
    """Turns Mastodon.py's exceptions into bridge's PublishError tree."""

    def __init__(self, target: MastodonTarget, doing: str) -> None:
        self.target = target
        self.doing = doing

    def __enter__(self) -> "_Translate":
        return self

    def __exit__(self, kind, exc, tb) -> bool:
        from mastodon import (
            MastodonAPIError,
            MastodonError,
            MastodonNetworkError,
            MastodonRatelimitError,
            MastodonServerError,
        )

        if exc is None or not isinstance(exc, MastodonError):
            return False
        target = self.target
        where = target.instance_url
        if isinstance(exc, MastodonRatelimitError):
            raise RateLimited(f"{where} rate limit reached while {self.doing}", retry_at=self._reset_at()) from None
        if isinstance(exc, MastodonNetworkError):
            raise TransientPublishError(f"{where} unreachable while {self.doing}: {_short(exc)}") from None
        if isinstance(exc, MastodonServerError):
            raise TransientPublishError(f"{where} answered HTTP {_status(exc)} while {self.doing}") from None
        if isinstance(exc, MastodonAPIError):
            status = _status(exc)
            message = _message(exc)
            if status is None:  # a 2xx that is not JSON: a proxy's page, maintenance
                raise TransientPublishError(f"{where} gave an unreadable answer while {self.doing}: {message}") from None
            if status in (401, 403):
                raise AuthError(f"{where} refused the access token of account {target.account!r} while {self.doing} "
                                f"(HTTP {status}: {message})", TOKEN_FIX.format(account=target.account)) from None
            if status == 429:
                raise RateLimited(f"{where} rate limit reached while {self.doing}", retry_at=self._reset_at()) from None
            if status in (408, 409, 425):
                raise TransientPublishError(f"{where} answered HTTP {status} while {self.doing}: {message}") from None
            hint = NOT_FOUND_HINT if status == 404 and self.doing == "posting" else ""
            raise PermanentPublishError(f"{where} refused {self.doing} (HTTP {status}): {message}{hint}") from None
        raise TransientPublishError(f"unexpected trouble with {where} while {self.doing}: {_short(exc)}") from None

    def _reset_at(self) -> datetime | None:
        """X-RateLimit-Reset on the target's clock (Mastodon.py keeps it as a local epoch, adjusted by Date)."""
        reset = self.target.api.ratelimit_reset
        if not reset:
            return None
        wait = max(0.0, float(reset) - time.time()) + 1.0  # the Date header has whole seconds
        return datetime.fromtimestamp(self.target.clock() + wait, timezone.utc)


# --- helpers ------------------------------------------------------------------------------------------------


def _published(status) -> Published:
    return Published(remote_id=str(status["id"]), url=status.get("url") or status.get("uri"))


def _status(exc) -> int | None:
    return exc.args[1] if len(exc.args) > 1 and isinstance(exc.args[1], int) else None


def _message(exc) -> str:
    return str(exc.args[3]) if len(exc.args) > 3 and exc.args[3] else _short(exc)


def _short(exc) -> str:
    text = str(exc.args[0]) if exc.args else str(exc)
    return text if len(text) < 200 else text[:200] + "…"


def _timestamp(value) -> float:
    if isinstance(value, datetime):
        return value.timestamp()
    return float("inf")  # unknown: keep looking


def _fit_description(text: str, limit) -> str:
    """Alt text within the instance's limit, which Mastodon counts in code points; cut between graphemes."""
    limit = limit if isinstance(limit, int) and limit > 0 else DEFAULT_LIMITS["description_limit"]
    if len(text) <= limit:
        return text
    cut = max(offset for offset in graphemes.boundaries(text) if offset <= limit)
    return text[:cut]


def _normal_url(url: str) -> str:
    """Compare links the way a reader would: scheme and host case, default port, trailing slash, escapes."""
    try:
        parts = urlsplit(url.strip())
        host = (parts.hostname or "").lower()
        port = parts.port
    except ValueError:
        return url.strip()
    if port and port != {"http": 80, "https": 443}.get(parts.scheme.lower()):
        host = f"{host}:{port}"
    path = unquote(parts.path).rstrip("/")
    query = f"?{unquote(parts.query)}" if parts.query else ""
    return f"{host}{path}{query}"


def _candidate_links(delivery: DeliveryRow) -> set[str]:
    links = {delivery.link} if delivery.link else set()
    if delivery.entry_key.startswith(("http://", "https://")):
        links.add(delivery.entry_key)
    return {_normal_url(link) for link in links}


class _Hrefs(html.parser.HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.hrefs: list[str] = []

    def handle_starttag(self, tag: str, attrs) -> None:
        if tag == "a":
            self.hrefs.extend(value for name, value in attrs if name == "href" and value)


def _status_links(status) -> set[str]:
    """Every link of a status: the hrefs of its HTML content, and its card's URL."""
    parser = _Hrefs()
    parser.feed(status.get("content") or "")
    links = set(parser.hrefs)
    card = status.get("card") or {}
    if card.get("url"):
        links.add(card["url"])
    return {_normal_url(link) for link in links}


def limits_from_instance(info) -> dict:
    """The renderer's view of an instance, from a v2 (or v1) instance answer; Mastodon's defaults fill gaps."""
    data = _plain(info)
    limits = asdict(MastodonLimits.from_instance(data))
    if not (data.get("configuration") or {}).get("statuses") and isinstance(data.get("max_toot_chars"), int):
        limits["max_characters"] = data["max_toot_chars"]  # Pleroma and old forks, v1 only
    limits["version"] = data.get("version")
    return limits


def _plain(value):
    """Mastodon.py's typed answers as plain dicts and lists (they subclass dict, with odd value types)."""
    if isinstance(value, dict):
        return {str(key): _plain(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_plain(item) for item in value]
    return value
