"""Publishing to a Mastodon account through Mastodon.py.

- Mastodon.py is set up for a daemon: version_check_mode="none" (its version check can recurse forever when
  the instance endpoint fails), ratelimit_method="throw" (its default sleeps and retries forever) and short,
  deliberate timeouts instead of its 300 s default; bridge does its own backoff. Its timeouts bound each socket
  read, so its session also gives every request one deadline (total_timeout, bridge.platforms.mastodon.deadline_session):
  a server dripping its answer a byte at a time cannot hold the delivery of every account. Its idea of the
  server's version is pinned (PINNED_API_VERSION): otherwise media_post() asks /api/v1/instance before every upload,
  and when that fails it silently falls back to the synchronous /api/v1/media of 2019.
- Servers that speak Mastodon's API differ (bridge/platforms/mastodon/servers.py): the instance document's
  `version` picks a ServerProfile, kept with the limits. It says whether the server honours Idempotency-Key,
  how it counts a status, which HTTP status a validation error has, which scopes reading one's own statuses
  needs. Software bridge does not know gets the most conservative profile.
- Every status carries the delivery's stable Idempotency-Key (an HTTP header). After an unknown outcome
  (a lost answer, a crash after sending) find_existing() first looks for the permalink among the account's
  own recent statuses, at any age. When the token may not read them (403), a server that honours the key
  gets the post again with the same key within its one-hour window; anywhere else bridge does not post
  blindly: OutcomeUnknown holds the delivery (state `unknown`) until a token that may look, or the writer's
  `bridge retry --force`.
- The instance's limits come from /api/v2/instance (v1 as fallback), asked without a trailing slash (Takahē
  answers 404 with one), cached in the state for a day, and handed to the renderer (render_limits()) with
  the profile's way of counting. A server that refuses a post as too long raises TooLong: the delivery
  engine re-renders it once with render_limits(strict=True) -- re-read, strictest counting -- and sends that.
- Images (a photo post's, or any with images = "attach"): fetched with media_fetcher, uploaded with their alt text, and polled -- a bounded
  number of times -- until the server has processed them (202 -> 206... -> 200). An image that cannot be
  fetched or is refused (422/413) is left out: the post goes out without it rather than not at all.
- diagnose() (for `bridge doctor`): the server (software, version, profile, limits) and what the token may do,
  found by probing, since Mastodon's API cannot list a token's scopes: a blank status (refused with the
  profile's validation status after the scope check, so nothing is created), an upload without a file, and
  the own-statuses lookup.

Errors (bridge.errors):

    MastodonRatelimitError (429)             -> RateLimited, retry_at from X-RateLimit-Reset
    MastodonNetworkError (timeout, refused)  -> TransientPublishError (retried with the same Idempotency-Key,
                                                after looking for the post: the outcome is unknown)
    MastodonServerError (5xx), no JSON       -> TransientPublishError
    401, 403, and Takahē's 400               -> AuthError with the fix (the account is paused, posts stay queued)
    "Invalid Bearer token" (servers.py)
                                                (but 403 while looking for an earlier post: lookup skipped)
    408, 409, 425                            -> TransientPublishError
    validation (400/422) of a status         -> PermanentPublishError(not_posted=True) with the server's message;
                                                TooLong when the message says the status is too long
    other 4xx (404...)                       -> PermanentPublishError with the server's message
    Mastodon.py's own ValueError (visibility) -> PermanentPublishError

Instance limits: unreachable and never read -> TransientPublishError (the post is rendered later); unreachable
with a stale cache -> the cache; no instance endpoint at all (404) -> Mastodon's defaults, with the
conservative profile's counting, said once in the log and shown by `status` and `doctor`. A content warning
is sent with sensitive=true (Mastodon 4.7 no longer implies it), so an image stays behind the warning.
"""

from __future__ import annotations

import html.parser
import io
import logging
import re
import time
import warnings
from dataclasses import asdict
from datetime import datetime, timezone
from urllib.parse import unquote, urlsplit

from bridge.config import AccountConfig, Secret
from bridge.errors import AuthError, OutcomeUnknown, PermanentPublishError, RateLimited, TooLong, TransientPublishError
from bridge.faults import crash_point
from bridge.render import graphemes
from bridge.platforms.mastodon.limits import MastodonLimits
from bridge.render.links import find_urls
from bridge.state import DeliveryRow, State
from bridge.platforms.base import Published, TargetContext
from bridge.platforms.mastodon.servers import (
    CONSERVATIVE,
    INSTANCE_PATHS,
    ServerProfile,
    identify,
    profile_key,
    profile_named,
    refuses_token,
)

log = logging.getLogger("bridge.mastodon")

CONNECT_TIMEOUT = 10.0
READ_TIMEOUT = 30.0
TOTAL_TIMEOUT = 60.0  # one request: connecting, headers and body (an upload gets more: bridge.deadline)
LIMITS_MAX_AGE = 86400.0
# Mastodon remembers an Idempotency-Key for one hour, from the successful create (platform-rules.md); other
# servers that honour it say how long in their profile (idempotency_window). Stay well inside it: clocks differ.
IDEMPOTENCY_WINDOW = 3600.0
IDEMPOTENCY_MARGIN = 600.0
# Looking for an earlier post: pages of the account's own statuses, newest first, back to the first attempt.
STATUSES_PAGE_SIZE = 40  # the API's maximum
STATUSES_MAX_PAGES = 5
LOOKUP_SLACK = 3600.0  # server and local clocks may differ
# Media processing (video, GIF, audio; images are usually done at once): bounded polling.
MEDIA_POLL_DELAYS = (0.5, 1.0, 1.0, 2.0, 2.0, 3.0, 5.0, 5.0, 5.0, 5.0, 10.0, 10.0, 10.0, 10.0)  # ~70 s in all
PINNED_API_VERSION = (4, 0, 0)  # every server bridge supports has /api/v2/media and /api/v2/instance
WRITE_SCOPES = "write:statuses write:media"
TOKEN_FIX = (
    "create a new access token with the scopes " + WRITE_SCOPES + " and those that let bridge look for an "
    "earlier post -- `bridge login mastodon --instance URL` asks the server for them, or Preferences > "
    "Development > New application -- and put it where accounts.{account}.access_token points (or in "
    "$CREDENTIALS_DIRECTORY/{account})"
)
NOT_FOUND_HINT = (" -- the status posted earlier for this entry (same Idempotency-Key) was deleted, or the "
                  "instance URL does not lead to a Mastodon-API server")
# How servers word a refusal for length: Mastodon "Text character limit of 500 exceeded", Takahē "Status is
# too long", GoToSocial "status too long", Akkoma/Pleroma "The status is over the character limit".
VALIDATION_STATUSES = (400, 422)  # Mastodon says 422, Takahē 400 (mastodon_servers.py): both make nothing
TOO_LONG = re.compile(r"too long|character limit|over the (?:character )?limit|exceed", re.IGNORECASE)
DEFAULT_LIMITS = asdict(MastodonLimits())
ERROR_BODY_KEPT = 200  # bytes: a few words, not a proxy's error page


class MastodonTarget:
    platform = "mastodon"

    def __init__(self, account: str, settings: AccountConfig, token: Secret, state: State, *,
                 clock=time.time, sleep=time.sleep, media_fetcher=None, user_agent: str = "bridge",
                 timeout: tuple[float, float] = (CONNECT_TIMEOUT, READ_TIMEOUT),
                 total_timeout: float = TOTAL_TIMEOUT) -> None:
        from mastodon import Mastodon

        from bridge.platforms.mastodon.deadline_session import deadline_session

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
            session=deadline_session(total_timeout),
            user_agent=user_agent,
        )
        # With version_check_mode="none" Mastodon.py records the version as known but leaves it at 1.0.0.
        self.api.mastodon_major, self.api.mastodon_minor, self.api.mastodon_patch = PINNED_API_VERSION
        self._error_body: str | None = None
        self.api.session.hooks["response"].append(self._keep_error_body)
        self._me_id: str | None = None
        self._uploads: dict[tuple[int, str], str] = {}  # (delivery id, image URL) -> media id still processing

    def _keep_error_body(self, response, *args, **kwargs) -> None:
        """requests' response hook. Mastodon.py keeps only a JSON error's words; an error answered in a few words
        of plain text (Takahē's "Invalid Bearer token") is kept here for the translation of the error."""
        short = not response.ok and len(response.content) <= ERROR_BODY_KEPT
        self._error_body = response.text.strip() if short else None

    def _error_words(self, exc) -> str:
        """The server's words for an error: its JSON error, else the short body it answered."""
        return str(exc.args[3]) if len(exc.args) > 3 and exc.args[3] else (self._error_body or _short(exc))

    def _refuses_token(self, exc) -> bool:
        return refuses_token(_status(exc), self._error_words(exc))

    # --- limits and the server's profile ------------------------------------------------------------------

    def render_limits(self, strict: bool = False) -> dict:
        """The server's limits for the renderer, counted the way its profile says: the cached ones when
        younger than a day, else read anew. `strict` (after the server refused a post as too long): read
        anew, counted the strictest way (MastodonLimits.strictest)."""
        cached = self.state.account(self.account)
        limits = cached["limits"] if (cached["limits"] or {}).get("instance") == self.instance_url else None
        fresh_enough = (limits and "profile" in limits  # cached before profiles existed: read anew
                        and self.clock() - (cached["limits_fetched_at"] or 0) < LIMITS_MAX_AGE)
        if not fresh_enough or strict:
            try:
                fresh = self.fetch_limits()
            except TransientPublishError as exc:
                if limits is None:
                    raise  # no limits at all: render later rather than guess (the server is probably down anyway)
                log.warning("account %s: cannot read the instance's limits (%s); using the cached ones", self.account, exc)
            else:
                if fresh.get("source") == "defaults":
                    # Said once: when the server stops answering, not on every daily re-read.
                    level = logging.INFO if limits and limits.get("source") == "defaults" else logging.WARNING
                    log.log(level, "account %s: %s answers neither %s; using Mastodon's default limits "
                            "(%d characters) counted the most careful way", self.account, self.instance_url,
                            " nor ".join(INSTANCE_PATHS), fresh["max_characters"])
                self.state.save_limits(self.account, fresh, self.clock())
                limits = fresh
        if strict:
            return {**limits, **asdict(MastodonLimits.from_dict(limits).strictest())}
        return limits

    def fetch_limits(self) -> dict:
        """Limits and profile from /api/v2/instance, else /api/v1/instance; Mastodon's defaults (and the
        conservative profile) when the server has neither. Raises TransientPublishError when it cannot say."""
        info, source = self._instance_document()
        return {**limits_from_instance(info, source), "instance": self.instance_url}

    def _instance_document(self) -> tuple[dict | None, str]:
        """(the instance document, "v2" | "v1"), or (None, "defaults") when the server has neither.

        Mastodon.py's instance_v2()/instance_v1() ask with a trailing slash, which Takahē answers with 404:
        the paths are asked here as servers spell them, through Mastodon.py's own request method (same
        session, timeouts, error types; Mastodon.py is pinned in pyproject.toml).
        """
        from mastodon import MastodonAPIError, MastodonNetworkError, MastodonRatelimitError

        trouble = None
        with self._translate("reading the instance's limits"):
            for path in INSTANCE_PATHS:
                try:
                    with warnings.catch_warnings():
                        warnings.simplefilter("ignore")  # v1 is deprecated: that is why it is the fallback
                        info = self.api._Mastodon__api_request("GET", path)
                except (MastodonNetworkError, MastodonRatelimitError):
                    raise
                except MastodonAPIError as exc:
                    status = _status(exc)
                    if status == 403 or self._refuses_token(exc):
                        raise
                    if status is None or status >= 500:
                        trouble = exc  # down or not JSON: cannot say whether the server has limits
                    log.info("account %s: %s%s answered %s", self.account, self.instance_url, path, _short(exc))
                    continue
                if isinstance(info, dict):
                    return info, path.split("/")[2]
            if trouble is not None:
                raise trouble
        return None, "defaults"

    def profile(self) -> ServerProfile:
        """How this account's server behaves where Mastodon-API servers differ (from the cached limits)."""
        return profile_named(self.render_limits().get("profile"))

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

    # --- the replies of a long note's thread (bridge/notethreads.py) -------------------------------------------

    def publish_reply(self, delivery: DeliveryRow, reply: dict, index: int, root: dict, parent: dict) -> Published:
        """A reply to the part before it, under the part's own Idempotency-Key."""
        spoiler_text = reply.get("spoiler_text") or ""
        with self._translate("posting"):
            status = self._post_status(reply["status"], spoiler_text=spoiler_text or None, sensitive=bool(spoiler_text),
                                       visibility=reply.get("visibility") or None, language=reply.get("language") or None,
                                       in_reply_to_id=parent["remote_id"],
                                       idempotency_key=part_key(delivery.idempotency_key, index))
        return _published(status)

    def find_reply(self, delivery: DeliveryRow, reply: dict, index: int, root: dict, parent: dict) -> Published | None:
        """After an unknown outcome: the account's own reply to the part before, among its recent statuses; None
        when there is none, or when the token may not look but the part's key is still remembered. OutcomeUnknown
        otherwise (as find_existing)."""
        first = delivery.first_sent_at or delivery.sending_at
        if first is None:
            return None
        statuses = self._own_statuses_since(first - LOOKUP_SLACK)
        if statuses is None:
            profile = self.profile()
            if profile.honours_idempotency_key and self.clock() - first < profile.idempotency_window - IDEMPOTENCY_MARGIN:
                return None  # sent again with the same key, the server answers with the status it made
            raise OutcomeUnknown(
                f"part {index + 1} of the thread of {delivery.link or delivery.entry_key} may have been posted, and "
                "bridge cannot look: the token may not read the account's own statuses",
                unknown_fix(self.account, self.instance_url, profile))
        for status in statuses:
            if str(status.get("in_reply_to_id") or "") == str(parent["remote_id"]):
                return _published(status)
        return None

    def delete_reply(self, delivery: DeliveryRow, part: dict) -> None:
        """DELETE /api/v1/statuses/:id of one reply; one already gone counts as deleted."""
        from mastodon import MastodonNotFoundError

        with self._translate("deleting a post"):
            try:
                self.api.status_delete(part["remote_id"])
            except MastodonNotFoundError:
                log.info("account %s: status %s was already gone", self.account, part["remote_id"])

    def edit_reply(self, delivery: DeliveryRow, part: dict, reply: dict) -> Published:
        spoiler_text = reply.get("spoiler_text") or ""
        with self._translate("editing"):
            status = self.api.status_update(part["remote_id"], status=reply["status"], spoiler_text=spoiler_text,
                                            sensitive=bool(spoiler_text))
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
                    if (isinstance(exc, MastodonServerError) or status in (403, 408, 429) or status is None
                            or self._refuses_token(exc)):
                        raise
                    raise PermanentPublishError(f"HTTP {status}: {self._error_words(exc)}") from None
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
        """After an unknown outcome: the earlier post, found by its permalink among the account's own recent
        statuses, at any age; None when it surely was not made -- or when the token may not look but the
        server honours the Idempotency-Key and its window is still open (a repeat returns the first status).
        Raises OutcomeUnknown when nobody can tell: posting again could post twice."""
        first = delivery.first_sent_at or delivery.sending_at
        if first is None:
            return None  # never sent: nothing to find
        profile = self.profile()
        key_covers = (profile.honours_idempotency_key
                      and self.clock() - first < profile.idempotency_window - IDEMPOTENCY_MARGIN)
        what = delivery.link or delivery.entry_key
        links = _candidate_links(delivery)
        statuses = self._own_statuses_since(first - LOOKUP_SLACK) if links else None
        if statuses is None:
            if key_covers:
                log.info("account %s: cannot look for an earlier post of %s; posting again with the same "
                         "Idempotency-Key, which %s still remembers", self.account, what, self.instance_url)
                return None
            why = ("the entry has no link to look for" if not links else
                   f"the token may not read the account's own statuses (scopes {' '.join(profile.own_statuses_scopes)})")
            raise OutcomeUnknown(
                f"an earlier attempt to post {what} may have succeeded, and bridge cannot look: {why}; "
                + ("the server no longer remembers its Idempotency-Key" if profile.honours_idempotency_key
                   else f"{self.instance_url} ({profile.software}) does not honour the Idempotency-Key"),
                unknown_fix(self.account, self.instance_url, profile))
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
                return None  # a token without the read scopes (profile.own_statuses_scopes): not an auth failure
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

    def delete(self, delivery: DeliveryRow) -> None:
        """DELETE /api/v1/statuses/:id; a status already gone (404) counts as deleted."""
        from mastodon import MastodonNotFoundError

        with self._translate("deleting a post"):
            try:
                self.api.status_delete(delivery.remote_id)
            except MastodonNotFoundError:
                log.info("account %s: status %s was already gone", self.account, delivery.remote_id)

    # --- bridge doctor ---------------------------------------------------------------------------------------

    def diagnose(self) -> dict:
        """The server (software, version, profile, limits) and what the token may do.

        Mastodon's API cannot list a token's scopes, so they are probed, creating nothing: a blank status
        (write:statuses), an upload without a file (write:media), the own-statuses lookup (the profile's
        read scopes). `problems` are (problem, fix) pairs for `bridge doctor`. Raises AuthError when the token
        is refused or may not post, TransientPublishError when the server cannot be reached.
        """
        from mastodon import MastodonAPIError

        limits = self.fetch_limits()
        self.state.save_limits(self.account, limits, self.clock())
        profile = profile_named(limits["profile"])
        report = {
            "instance": self.instance_url,
            "software": limits["software"],
            "software_version": limits.get("software_version"),
            "version": limits.get("version"),
            "profile": limits["profile"],
            "limits": {key: limits[key] for key in DEFAULT_LIMITS},
            "limits_source": limits["source"],
            "account": None,
            "account_url": None,
            "can_post": False,
            "can_upload": None,  # None: the probe could not tell
            "can_read": False,
            "notes": [],
            "problems": [],
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
            report["can_post"] = self._may_post(profile, report["notes"])
            report["can_upload"] = self._may_upload()
        if not report["can_post"]:
            raise AuthError(f"the access token of account {self.account!r} may not post on {self.instance_url} "
                            "(it lacks the scope write:statuses)", TOKEN_FIX.format(account=self.account))
        if limits["source"] == "defaults":
            report["problems"].append((
                f"{self.instance_url} answers neither {' nor '.join(INSTANCE_PATHS)}: bridge uses Mastodon's "
                f"default limits ({limits['max_characters']} characters) counted the most careful way",
                f"check that accounts.{self.account}.instance is the server's address (https://host, no path); if "
                "it is, nothing to do: a post the server refuses as too long is re-rendered once, more strictly"))
        if report["account"] is None:
            report["notes"].append("the token works for posting but cannot read the profile, so which account it "
                                   "belongs to cannot be shown")
        if not report["can_read"]:
            report["problems"].append((
                f"the token may not read the account's own statuses (scopes "
                f"{' '.join(profile.own_statuses_scopes)} on {profile.software}): after a lost answer or a crash "
                + ("older than the server remembers an Idempotency-Key " if profile.honours_idempotency_key else "")
                + "bridge cannot look for the post it may have made, so it holds the post (`unknown`) rather "
                "than risk posting it twice",
                read_scopes_fix(self.account, self.instance_url, profile)))
        return report

    def _may_post(self, profile: ServerProfile, notes: list[str]) -> bool:
        """Send a blank status: servers check the token's scopes first (403), then refuse blank text --
        Mastodon with 422, Takahē with 400 (profile.validation_statuses)."""
        from mastodon import MastodonAPIError

        try:
            created = self.api.status_post("", visibility="direct")
        except MastodonAPIError as exc:
            status = _status(exc)
            if status == 403:
                return False
            if status in profile.validation_statuses:
                return True
            if status in VALIDATION_STATUSES:
                notes.append(f"a blank status was refused with HTTP {status}, where the {profile.software} profile "
                             f"expects {'/'.join(map(str, sorted(profile.validation_statuses)))}")
                return True
            raise
        log.warning("account %s: %s accepted a blank status; deleting it", self.account, self.instance_url)
        self.api.status_delete(created["id"])
        return True

    def _may_upload(self) -> bool | None:
        """POST /api/v2/media without a file: 403 without write:media, else a validation error (nothing made)."""
        from mastodon import MastodonAPIError

        try:
            created = self.api._Mastodon__api_request("POST", "/api/v2/media", {})
        except MastodonAPIError as exc:
            status = _status(exc)
            return False if status == 403 else (True if status is not None and status < 500 else None)
        log.warning("account %s: %s accepted an upload without a file", self.account, self.instance_url)
        return bool(created)

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
            late = _deadline_exceeded(exc)
            if late:
                raise TransientPublishError(f"{where} did not answer in time while {self.doing}: {late}") from None
            raise TransientPublishError(f"{where} unreachable while {self.doing}: {_short(exc)}") from None
        if isinstance(exc, MastodonServerError):
            raise TransientPublishError(f"{where} answered HTTP {_status(exc)} while {self.doing}") from None
        if isinstance(exc, MastodonAPIError):
            status = _status(exc)
            message = target._error_words(exc)
            if status is None:  # a 2xx that is not JSON: a proxy's page, maintenance
                raise TransientPublishError(f"{where} gave an unreadable answer while {self.doing}: {message}") from None
            if status == 403 or refuses_token(status, message):
                raise AuthError(f"{where} refused the access token of account {target.account!r} while {self.doing} "
                                f"(HTTP {status}: {message})", TOKEN_FIX.format(account=target.account)) from None
            if status == 429:
                raise RateLimited(f"{where} rate limit reached while {self.doing}", retry_at=self._reset_at()) from None
            if status in (408, 409, 425):
                raise TransientPublishError(f"{where} answered HTTP {status} while {self.doing}: {message}") from None
            refusal = f"{where} refused {self.doing} (HTTP {status}): {message}"
            if self.doing == "posting" and status in VALIDATION_STATUSES:  # nothing was made
                raise (TooLong(refusal) if TOO_LONG.search(message) else
                       PermanentPublishError(refusal, not_posted=True)) from None
            hint = NOT_FOUND_HINT if status == 404 and self.doing == "posting" else ""
            raise PermanentPublishError(refusal + hint) from None
        raise TransientPublishError(f"unexpected trouble with {where} while {self.doing}: {_short(exc)}") from None

    def _reset_at(self) -> datetime | None:
        """X-RateLimit-Reset on the target's clock (Mastodon.py keeps it as a local epoch, adjusted by Date)."""
        reset = self.target.api.ratelimit_reset
        if not reset:
            return None
        wait = max(0.0, float(reset) - time.time()) + 1.0  # the Date header has whole seconds
        return datetime.fromtimestamp(self.target.clock() + wait, timezone.utc)


def make_target(context: TargetContext) -> MastodonTarget:
    """Platform.make_target."""
    return MastodonTarget(context.account, context.settings, context.secret, context.state,
                          media_fetcher=context.media_fetcher, user_agent=context.user_agent,
                          timeout=(context.connect_timeout, context.read_timeout),
                          total_timeout=context.total_timeout)


# --- helpers ------------------------------------------------------------------------------------------------


def read_scopes_fix(account: str, instance_url: str, profile: ServerProfile) -> str:
    return (f"give account {account} a token that may also read its own statuses (scopes {WRITE_SCOPES} "
            f"{' '.join(profile.own_statuses_scopes)}: `bridge login mastodon --instance {instance_url}`)")


def unknown_fix(account: str, instance_url: str, profile: ServerProfile) -> str:
    """What the writer does about deliveries whose outcome is unknown (shown by the log, `status`, `doctor`)."""
    return (read_scopes_fix(account, instance_url, profile) + f", then `bridge retry --account {account}` (bridge "
            f"looks before it posts); or look at the account yourself and, for posts that are not there, "
            f"`bridge retry --force --account {account}`")


def part_key(key: str, index: int) -> str:
    """The Idempotency-Key of a thread's reply `index` (1...): the delivery's, told apart per part."""
    return f"{key}-{index}"


def _published(status) -> Published:
    return Published(remote_id=str(status["id"]), url=status.get("url") or status.get("uri"))


def _status(exc) -> int | None:
    return exc.args[1] if len(exc.args) > 1 and isinstance(exc.args[1], int) else None


def _deadline_exceeded(exc) -> str | None:
    """What the deadline said, when it is why Mastodon.py gave up (it wraps requests' errors, keeping them as
    the context)."""
    from bridge.platforms.mastodon.deadline_session import DeadlineExceeded

    inner = exc.__cause__ or exc.__context__
    return str(inner) if isinstance(inner, DeadlineExceeded) else None


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


class _Links(html.parser.HTMLParser):
    """The hrefs of a status's HTML, and its text (a server need not make every URL a link: Mastodon leaves
    one on an IP address or an unknown top-level domain as plain text)."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.hrefs: list[str] = []
        self.text: list[str] = []

    def handle_starttag(self, tag: str, attrs) -> None:
        if tag == "a":
            self.hrefs.extend(value for name, value in attrs if name == "href" and value)
        elif tag in ("br", "p"):
            self.text.append("\n")

    def handle_data(self, data: str) -> None:
        self.text.append(data)


def _status_links(status) -> set[str]:
    """Every link of a status: the hrefs of its HTML content, the URLs in its text, and its card's URL."""
    parser = _Links()
    parser.feed(status.get("content") or "")
    text = "".join(parser.text)
    links = set(parser.hrefs) | {text[start:end] for start, end in find_urls(text)}
    card = status.get("card") or {}
    if card.get("url"):
        links.add(card["url"])
    return {_normal_url(link) for link in links}


def limits_from_instance(info, source: str = "v2") -> dict:
    """The renderer's view of a server, from a v2 (or v1) instance answer (None: it has neither): its limits,
    Mastodon's defaults filling gaps, counted the way the profile its `version` picks says."""
    data = _plain(info) if isinstance(info, dict) else {}
    limits = asdict(MastodonLimits.from_instance(data))
    if not (data.get("configuration") or {}).get("statuses") and isinstance(data.get("max_toot_chars"), int):
        limits["max_characters"] = data["max_toot_chars"]  # Pleroma and old forks, v1 only
    version = data.get("version") if isinstance(data.get("version"), str) else None
    profile, software_version = identify(version)
    limits.update(counting=profile.counting, urls_in_full=profile.urls_in_full, version=version,
                  software=None if profile is CONSERVATIVE else profile.software, software_version=software_version,
                  profile=profile_key(profile),
                  source=source if info is not None else "defaults")
    return limits


def _plain(value):
    """Mastodon.py's typed answers as plain dicts and lists (they subclass dict, with odd value types)."""
    if isinstance(value, dict):
        return {str(key): _plain(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_plain(item) for item in value]
    return value
