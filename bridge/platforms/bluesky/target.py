"""Publishing to a Bluesky account (any atproto PDS) through the atproto SDK.

- One login, kept: the session string is stored in the state database (0600) whenever the SDK creates or
  refreshes it (on_session_change CREATE/REFRESH) and imported on the next start, so a restart costs no
  createSession (limited to 30 per 5 minutes and ~100-300 a day). The SDK refreshes the access token itself;
  the app password is used only when there is no stored session or the session cannot be refreshed
  (refresh token expired or revoked: 400 ExpiredToken/InvalidToken, or 401). Nothing touches the network
  before the first publish/find_existing/diagnose: the engine builds targets for accounts with due rows only.
- Retry safety: every post is created with the delivery's record key (a TID chosen once and stored before the
  first attempt). After an unknown outcome (timeout, connection lost, 5xx -- a second create with the same
  rkey is a 500 too) getRecord on that rkey says whether the post exists; find_existing() asks the same.
- Media: the payload describes its images ({"source_url", "size", "width", "height", "mime_type"}); they are
  fetched with media_fetcher, uploaded, and replaced by blob refs just before createRecord. An image that
  cannot be fetched, is over the lexicon's size limit, or is refused by the server is left out: the post
  (and its link card) goes out without it rather than not at all.
- The SDK is set up for a daemon: deliberate timeouts (its httpx default of 5 s is too short for a blob
  upload) and one deadline for each request (total_timeout, bridge.deadline.DeadlineTransport: httpx bounds each
  read, not their sum, so a server dripping its answer would hold every account's delivery); records and blobs
  go out as they are, through invoke_procedure (the typed create_record parses a record dict into the SDK's
  pydantic models and sends its re-serialisation; upload_blob hands httpx a deprecated `data=<bytes>` with the
  content type */*); the SDK's clock is bridge's clock.
- diagnose() (for `bridge doctor`) resolves the handle, checks the session and reports the server's
  ratelimit-* headers.

Errors: 400 InvalidRequest -> PermanentPublishError (server's message kept); 401/403, a refused app password
-> AuthError (the account is paused with the fix); 429 -> RateLimited until ratelimit-reset; 5xx, timeouts,
connection errors -> TransientPublishError (after a createRecord without an answer, getRecord is asked first).
"""

from __future__ import annotations

import copy
import json
import logging
import threading
import time
from datetime import datetime, timedelta, timezone

import httpx
from atproto_client import Client, Session, SessionEvent, models
from atproto_client.exceptions import (
    BadRequestError,
    InvokeTimeoutError,
    LoginRequiredError,
    NetworkError,
    RateLimitExceededError,
    RequestErrorBase,
    RequestException,
    UnauthorizedError,
)
from atproto_client.models.common import XrpcError
from atproto_client.request import Request

from bridge import ids
from bridge.config import AccountConfig, Secret
from bridge.deadline import DeadlineTransport
from bridge.errors import AuthError, PermanentPublishError, RateLimited, TransientPublishError
from bridge.faults import crash_point
from bridge.platforms.bluesky.payload import rfc3339
from bridge.platforms.bluesky.limits import BLUESKY_EXTERNAL_TYPE, BLUESKY_IMAGES_TYPE, BLUESKY_POST_TYPE, BLUESKY_THUMB_MAX_BYTES
from bridge.render import REPLIES
from bridge.state import DeliveryRow, State
from bridge.platforms.base import Published, TargetContext

log = logging.getLogger("bridge.bluesky")

CONNECT_TIMEOUT = 10.0
READ_TIMEOUT = 30.0
WRITE_TIMEOUT = 60.0  # sending a blob of up to 2 MB over a slow uplink
POOL_TIMEOUT = 10.0
TOTAL_TIMEOUT = 60.0  # one request: connecting, headers and body (an upload gets more: bridge.deadline)
POST_COLLECTION = BLUESKY_POST_TYPE
IMAGES_EMBED_TYPE = BLUESKY_IMAGES_TYPE
THUMB_MAX_BYTES = BLUESKY_THUMB_MAX_BYTES  # app.bsky.embed.external#external thumb maxSize
IMAGE_MAX_BYTES = 2_000_000  # app.bsky.embed.images#image maxSize since 2026-04 (1,000,000 before)
TOKEN_ERRORS = frozenset({"ExpiredToken", "InvalidToken"})  # 400s that mean "this session is over"
RECORD_NOT_FOUND = "RecordNotFound"
POST_WEB_URL = "https://bsky.app/profile/{handle}/post/{rkey}"
APP_PASSWORD_FIX = (
    "create a new app password at Settings > Privacy and security > App passwords (on bsky.app, signed in as "
    "{handle}) and put it where accounts.{account}.app_password points (or in $CREDENTIALS_DIRECTORY/{account}); "
    "check that handle = \"{handle}\" and service = \"{service}\" are right"
)


class _ClockedClient(Client):
    """The SDK's client, reading the time from bridge's clock (it decides when to refresh the access token)."""

    def __init__(self, *args, clock=time.time, **kwargs) -> None:
        self._clock = clock
        super().__init__(*args, **kwargs)

    def get_current_time(self) -> datetime:
        return datetime.fromtimestamp(self._clock(), timezone.utc)


class BlueskyTarget:
    platform = "bluesky"

    def __init__(self, account: str, settings: AccountConfig, password: Secret, state: State, *,
                 clock=time.time, media_fetcher=None, total_timeout: float = TOTAL_TIMEOUT) -> None:
        self.account = account
        self.total_timeout = total_timeout
        self.settings = settings
        self.state = state
        self.clock = clock
        self.media_fetcher = media_fetcher
        self._password = password
        self._api: Client | None = None
        self._logged_in = False
        self._did: str | None = None
        self._handle: str | None = None
        self._pds: str | None = None
        self.session_source: str | None = None  # "reused" (stored session) | "created" (password login)
        self.rate_limit: dict | None = None  # the last ratelimit-* headers the server sent
        self._lock = threading.RLock()

    # --- limits ----------------------------------------------------------------------------------------------

    def render_limits(self, strict: bool = False) -> None:
        return None  # Bluesky's limits are fixed by the lexicon; the renderer knows them

    # --- publishing ------------------------------------------------------------------------------------------

    def publish(self, delivery: DeliveryRow, payload: dict) -> Published:
        rkey = _rkey(delivery)
        record = copy.deepcopy(payload["record"])  # the stored payload stays as it is, for the next attempt
        record.setdefault("$type", POST_COLLECTION)
        if not record.get("createdAt"):
            record["createdAt"] = rfc3339(datetime.fromtimestamp(self.clock(), timezone.utc))
        with self._translate("uploading an image"):
            self._client()
            with_media = self._attach_media(record)
        try:
            with self._translate("posting"):
                return self._create(rkey, record)
        except PermanentPublishError as exc:
            if not with_media:
                raise
            # e.g. "blob too big (maximum 1000000, got N) at $.record.embed.external.thumb": the text is what matters
            log.warning("account %s: the server refused the post with its image (%s); posting it without",
                        self.account, exc)
        _drop_media(record)
        with self._translate("posting"):
            return self._create(rkey, record)

    # --- the replies of a long note's thread (bridge/notethreads.py) -------------------------------------------

    def seal_payload(self, payload: dict) -> dict:
        """Each reply of a thread gets its record key here, once, before the payload is stored: its retry identity,
        as the delivery's rkey is the first post's."""
        for reply in payload.get(REPLIES) or []:
            reply.setdefault("rkey", ids.new_tid(self.clock()))
        return payload

    def publish_reply(self, delivery: DeliveryRow, reply: dict, index: int, root: dict, parent: dict) -> Published:
        """The reply's record, under its own rkey, referring to the thread's first post and the part before."""
        record = copy.deepcopy(reply["record"])
        record["reply"] = {"root": _strong_ref(root), "parent": _strong_ref(parent)}
        with self._translate("posting"):
            self._client()
            return self._create(reply["rkey"], record)

    def find_reply(self, delivery: DeliveryRow, reply: dict, index: int, root: dict, parent: dict) -> Published | None:
        with self._translate("looking for an earlier post"):
            self._client()
            return self._lookup(reply["rkey"])

    def delete_reply(self, delivery: DeliveryRow, part: dict) -> None:
        """deleteRecord of one reply (its rkey ends its at:// URI); a record already gone counts as deleted."""
        rkey = part["remote_id"].rsplit("/", 1)[-1]
        with self._translate("deleting a post"):
            self._call(lambda api: _procedure(api, "com.atproto.repo.deleteRecord",
                                              {"repo": self._did, "collection": POST_COLLECTION, "rkey": rkey}))

    def find_existing(self, delivery: DeliveryRow) -> Published | None:
        """Whether the post with this delivery's record key exists (None: surely not)."""
        rkey = _rkey(delivery)
        with self._translate("looking for an earlier post"):
            return self._lookup(rkey)

    def edit(self, delivery: DeliveryRow, payload: dict) -> Published:
        raise PermanentPublishError("Bluesky posts cannot be edited")

    def diagnose(self) -> dict:
        """For `bridge doctor`: the handle resolves, the credentials work (reusing the stored session)."""
        handle = _bare_handle(self.settings.handle)
        with self._translate("resolving the handle", login=True):
            with self._lock:
                if self._api is None:
                    self._api = self._new_client()
                api = self._api
            try:
                if handle.startswith("did:"):
                    did = handle
                else:
                    did = api.com.atproto.identity.resolve_handle(
                        models.ComAtprotoIdentityResolveHandle.Params(handle=handle)).did
            except BadRequestError as exc:
                raise AuthError(
                    f"the handle {handle!r} of account {self.account!r} does not resolve at "
                    f"{self.settings.service_url} ({_message(exc)})",
                    f"set accounts.{self.account}.handle to your handle without '@' (e.g. you.bsky.social), "
                    f"and service to your PDS if it is not bsky.social",
                ) from None
        with self._translate("checking the credentials", login=True):
            self._client()
            info = self._call(lambda api: api.com.atproto.server.get_session())
        if info.did != did:
            raise AuthError(
                f"the app password of account {self.account!r} belongs to @{info.handle} ({info.did}), "
                f"but {handle} is {did}",
                self._fix(),
            )
        if info.active is False:
            raise AuthError(f"the Bluesky account @{info.handle} is not active ({info.status or 'no reason given'})",
                            "reactivate it (sign in at bsky.app) or remove the account from the config")
        return {
            "handle": info.handle,
            "did": info.did,
            "pds": self._pds,
            "session": self.session_source,
            "rate_limit": self.rate_limit,
        }

    def close(self) -> None:
        if self._api is not None:
            try:
                self._api.request.close()
            except Exception:  # closing is best effort
                log.debug("closing the Bluesky client failed", exc_info=True)

    # --- records ---------------------------------------------------------------------------------------------

    def delete(self, delivery: DeliveryRow) -> None:
        """com.atproto.repo.deleteRecord of the post's record: deleting a record that is gone succeeds too."""
        rkey = _rkey(delivery)
        with self._translate("deleting a post"):
            self._call(lambda api: _procedure(api, "com.atproto.repo.deleteRecord",
                                              {"repo": self._did, "collection": POST_COLLECTION, "rkey": rkey}))

    def _create(self, rkey: str, record: dict) -> Published:
        """createRecord with our rkey; when no answer came (or a 5xx), getRecord tells whether it was made."""
        try:
            created = self._call(lambda api: _procedure(
                api, "com.atproto.repo.createRecord",
                {"repo": self._did, "collection": POST_COLLECTION, "rkey": rkey, "record": record}))
        except (NetworkError, RequestException) as exc:
            if not _outcome_unknown(exc):
                raise
            try:
                found = self._lookup(rkey)
            except RequestErrorBase:
                found = None
            if found is None:
                raise
            log.info("account %s: the post was made although the answer said %s", self.account, exc)
            return found
        return self._published(created["uri"], rkey, created.get("cid"))

    def _lookup(self, rkey: str) -> Published | None:
        try:
            got = self._call(lambda api: api.invoke_query(
                "com.atproto.repo.getRecord",
                params=models.ComAtprotoRepoGetRecord.Params(repo=self._did, collection=POST_COLLECTION, rkey=rkey),
                output_encoding="application/json").content)
        except BadRequestError as exc:
            if _error_name(exc) == RECORD_NOT_FOUND:
                return None
            raise
        return self._published(got["uri"], rkey, got.get("cid"))

    def _published(self, uri: str, rkey: str, cid: str | None = None) -> Published:
        return Published(remote_id=uri, url=POST_WEB_URL.format(handle=self._handle or self._did, rkey=rkey), cid=cid)

    # --- media -----------------------------------------------------------------------------------------------

    def _attach_media(self, record: dict) -> bool:
        """Upload the images the record describes and put their blob refs in; True when any is attached."""
        embed = record.get("embed")
        if not isinstance(embed, dict):
            return False
        if embed.get("$type") == BLUESKY_EXTERNAL_TYPE:
            external = embed.get("external") or {}
            described = external.pop("thumb", None)
            if described:
                blob = self._upload(described, THUMB_MAX_BYTES, "card image")
                if blob is not None:
                    external["thumb"] = blob[0]
                    return True
            return False
        if embed.get("$type") == IMAGES_EMBED_TYPE:
            images = []
            for item in embed.get("images") or []:
                blob = self._upload(item.get("image") or {}, IMAGE_MAX_BYTES, "image")
                if blob is None:
                    continue
                ref, width, height = blob
                image = {**item, "image": ref, "alt": item.get("alt") or ""}
                if "aspectRatio" not in image and width and height:
                    image["aspectRatio"] = {"width": width, "height": height}
                images.append(image)
            if images:
                embed["images"] = images
                return True
            del record["embed"]
        return False

    def _upload(self, described: dict, max_bytes: int, what: str) -> tuple[dict, int | None, int | None] | None:
        """(blob ref, width, height) for a described image, or None when it has to be left out."""
        if described.get("$type") == "blob":  # already uploaded
            return described, None, None
        url = described.get("source_url")
        if self.media_fetcher is None or not url:
            log.info("account %s: no way to fetch the %s %s; posting without it", self.account, what, url)
            return None
        try:
            media = self.media_fetcher(url)
        except Exception as exc:  # any fetch failure: the image is decoration, the post goes out
            log.info("account %s: cannot fetch the %s %s (%s); posting without it", self.account, what, url, exc)
            return None
        if len(media.data) > max_bytes:
            log.warning("account %s: the %s %s has %d bytes, more than Bluesky's %d; posting without it",
                        self.account, what, url, len(media.data), max_bytes)
            return None
        try:
            # Not client.upload_blob(): it hands httpx `data=<bytes>` (deprecated) and a "*/*" content type.
            response = self._call(lambda api: api.invoke_procedure(
                "com.atproto.repo.uploadBlob", content=media.data, headers={"Content-Type": media.mime_type},
                output_encoding="application/json"))
        except (BadRequestError, NetworkError) as exc:
            if isinstance(exc, BadRequestError) and _error_name(exc) in TOKEN_ERRORS:
                raise
            if isinstance(exc, NetworkError) and _status(exc) != 413:  # 413: over the server's upload limit
                raise
            log.warning("account %s: the server refused the %s %s (%s); posting without it", self.account, what,
                        url, exc)
            return None
        crash_point("mid-media-upload")
        blob = response.content.get("blob") if isinstance(response.content, dict) else None
        if not isinstance(blob, dict):
            raise TransientPublishError(f"{self.settings.service_url} answered an upload without a blob")
        return blob, getattr(media, "width", None), getattr(media, "height", None)

    # --- the session -----------------------------------------------------------------------------------------

    def _new_client(self) -> Client:
        timeout = httpx.Timeout(READ_TIMEOUT, connect=CONNECT_TIMEOUT, write=WRITE_TIMEOUT, pool=POOL_TIMEOUT)
        request = Request(timeout=timeout, event_hooks={"response": [self._note_rate_limit]},
                          transport=DeadlineTransport(self.total_timeout))
        api = _ClockedClient(base_url=self.settings.service_url, request=request, clock=self.clock)
        api.on_session_change(self._session_changed)
        return api

    def _client(self) -> Client:
        """The SDK client with a session: the stored one when there is one, else a password login."""
        with self._lock:
            if self._api is None:
                self._api = self._new_client()
            if not self._logged_in:
                if not self._import_stored(self._api):
                    self._password_login(self._api)
                self._logged_in = True
            return self._api

    def _import_stored(self, api: Client) -> bool:
        stored = self.state.load_session(self.account)
        if not stored:
            return False
        try:
            session = Session.decode(stored)
            if not session.access_jwt_payload.exp or not session.refresh_jwt_payload.exp:
                raise ValueError("a token without an expiry")  # the SDK would fail on the first call
        except Exception as exc:  # a truncated or garbled string in the database
            log.warning("account %s: the stored session is unreadable (%s); logging in with the app password",
                        self.account, type(exc).__name__)
            return False
        wanted = _bare_handle(self.settings.handle).lower()
        if wanted not in (session.handle.lower(), session.did):
            log.info("account %s: the stored session is for @%s, not %s; logging in with the app password",
                     self.account, session.handle, wanted)
            return False
        api.login(session_string=stored, fetch_bsky_profile=False)
        self.session_source = "reused"
        return True

    def _password_login(self, api: Client) -> None:
        log.info("account %s: logging in to %s as %s with the app password", self.account,
                 self.settings.service_url, self.settings.handle)
        api.update_base_url(self.settings.service_url)  # the entryway, not the PDS an old session pointed at
        with self._translate("logging in", login=True):
            api.login(_bare_handle(self.settings.handle), self._password.reveal(), fetch_bsky_profile=False)
        self.session_source = "created"

    def _renew(self, api: Client) -> None:
        """The server refused our session: refresh it, and log in with the app password if that fails."""
        with self._lock:
            try:
                api._refresh_and_set_session()  # 0.0.73 has no public way to force a refresh
                return
            except (BadRequestError, UnauthorizedError, LoginRequiredError) as exc:
                if not isinstance(exc, LoginRequiredError) and not _is_token_error(exc):
                    raise
                log.info("account %s: the session cannot be refreshed (%s)", self.account, exc)
            self.state.save_session(self.account, None, self.clock())
            self._password_login(api)

    def _call(self, call):
        """call(client) with a working session; a refused session is renewed once and the call repeated."""
        api = self._client()
        try:
            return call(api)
        except (BadRequestError, UnauthorizedError) as exc:
            if not _is_token_error(exc):
                raise
            log.info("account %s: the server refused the session (%s); renewing it", self.account, exc)
        self._renew(api)
        return call(api)

    def _session_changed(self, event: SessionEvent, session: Session) -> None:
        self._did, self._handle = session.did, session.handle
        self._pds = (session.pds_endpoint or "").removesuffix("/xrpc") or None
        if event in (SessionEvent.CREATE, SessionEvent.REFRESH):
            self.state.save_session(self.account, session.export(), self.clock())

    def _note_rate_limit(self, response: httpx.Response) -> None:
        headers = response.headers
        if "ratelimit-limit" not in headers:
            return
        self.rate_limit = {
            "limit": _int(headers.get("ratelimit-limit")),
            "remaining": _int(headers.get("ratelimit-remaining")),
            "reset": _int(headers.get("ratelimit-reset")),
            "policy": headers.get("ratelimit-policy"),
        }

    def _fix(self) -> str:
        return APP_PASSWORD_FIX.format(handle=_bare_handle(self.settings.handle), account=self.account,
                                       service=self.settings.service_url)

    # --- errors ----------------------------------------------------------------------------------------------

    def _translate(self, doing: str, *, login: bool = False):
        return _Translate(self, doing, login)


class _Translate:
    """Turns the atproto SDK's exceptions into bridge's PublishError tree."""

    def __init__(self, target: BlueskyTarget, doing: str, login: bool) -> None:
        self.target = target
        self.doing = doing
        self.login = login  # while logging in, a 4xx means the credentials (or the handle) are wrong

    def __enter__(self):
        return self

    def __exit__(self, kind, exc, tb) -> bool:
        if exc is None or not isinstance(exc, (RequestErrorBase, LoginRequiredError)):
            return False
        target = self.target
        where = target.settings.service_url
        account = target.account
        status = _status(exc)
        if isinstance(exc, RateLimitExceededError):
            raise RateLimited(f"{where} rate limit reached while {self.doing} ({exc.policy or 'no policy given'})",
                              retry_at=_retry_at(exc, target.clock)) from None
        if isinstance(exc, NetworkError) and (status is None or status >= 500 or status == 409):
            what = "did not answer in time" if isinstance(exc, InvokeTimeoutError) else "unreachable"
            detail = f"HTTP {status}" if status else _cause(exc)
            raise TransientPublishError(f"{where} {what} while {self.doing}: {detail}") from None
        if isinstance(exc, LoginRequiredError) or status in (401, 403) or _is_token_error(exc) or (
                self.login and status is not None and 400 <= status < 500 and status not in (408, 425)):
            raise AuthError(f"{where} refused the credentials of account {account!r} while {self.doing} "
                            f"({_describe(exc)})", target._fix()) from None
        if status is not None and (status >= 500 or status in (408, 425)):
            raise TransientPublishError(f"{where} answered HTTP {status} while {self.doing}: {_describe(exc)}") from None
        raise PermanentPublishError(f"{where} rejected the post (HTTP {status}): {_describe(exc)}") from None


# --- helpers ---------------------------------------------------------------------------------------------------


def _procedure(api: Client, nsid: str, body: dict) -> dict:
    """POST lexicon JSON as it is. (The SDK's typed methods would parse a record dict into its own model --
    validating it client-side with pydantic and adding "$type" to every nested object -- and send that.)"""
    response = api.invoke_procedure(nsid, content=json.dumps(body, ensure_ascii=False).encode("utf-8"),
                                    headers={"Content-Type": "application/json"}, output_encoding="application/json")
    return response.content if isinstance(response.content, dict) else {}


def _strong_ref(part: dict) -> dict:
    """com.atproto.repo.strongRef of a saved part."""
    return {"uri": part["remote_id"], "cid": part["cid"]}


def _rkey(delivery: DeliveryRow) -> str:
    if not delivery.rkey:
        raise PermanentPublishError("this delivery has no Bluesky record key; it cannot be posted safely")
    return delivery.rkey


def _drop_media(record: dict) -> None:
    embed = record.get("embed")
    if not isinstance(embed, dict):
        return
    if embed.get("$type") == IMAGES_EMBED_TYPE:
        del record["embed"]
    else:
        (embed.get("external") or {}).pop("thumb", None)


def _bare_handle(handle: str | None) -> str:
    return (handle or "").strip().lstrip("@")


def _status(exc: BaseException) -> int | None:
    response = getattr(exc, "response", None)
    return getattr(response, "status_code", None)


def _error_name(exc: BaseException) -> str | None:
    content = getattr(getattr(exc, "response", None), "content", None)
    return content.error if isinstance(content, XrpcError) else None


def _message(exc: BaseException) -> str:
    content = getattr(getattr(exc, "response", None), "content", None)
    if isinstance(content, XrpcError):
        return content.message or content.error
    return str(exc)


def _describe(exc: BaseException) -> str:
    """"InvalidRequest: Invalid app.bsky.feed.post record: grapheme too big ..." -- the server's own words."""
    content = getattr(getattr(exc, "response", None), "content", None)
    if isinstance(content, XrpcError):
        return f"{content.error}: {content.message}" if content.message else content.error
    return _cause(exc)


def _cause(exc: BaseException) -> str:
    inner = exc.__cause__ or exc.__context__
    text = str(inner) if inner is not None and str(inner) else (str(exc) or type(exc).__name__)
    return text if len(text) < 200 else text[:200] + "…"


def _is_token_error(exc: BaseException) -> bool:
    """A refused session (not a refused request): 401, or 400 ExpiredToken/InvalidToken."""
    if isinstance(exc, UnauthorizedError):
        return _status(exc) == 401
    return isinstance(exc, BadRequestError) and _error_name(exc) in TOKEN_ERRORS


def _outcome_unknown(exc: BaseException) -> bool:
    """No answer, or a 5xx: the write may or may not have happened."""
    if isinstance(exc, RateLimitExceededError):
        return False
    status = _status(exc)
    return status is None or status >= 500


def _retry_at(exc: RateLimitExceededError, clock) -> datetime | None:
    if exc.reset_at is not None:
        return exc.reset_at
    if exc.retry_after is not None:
        return datetime.fromtimestamp(clock(), timezone.utc) + timedelta(seconds=exc.retry_after)
    return None


def _int(value: str | None) -> int | None:
    try:
        return int(value) if value is not None else None
    except ValueError:
        return None


def make_target(context: TargetContext) -> BlueskyTarget:
    """Platform.make_target."""
    return BlueskyTarget(context.account, context.settings, context.secret, context.state,
                         media_fetcher=context.media_fetcher, total_timeout=context.total_timeout)
