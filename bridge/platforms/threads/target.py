"""Publishing one account's deliveries to Threads, exactly once.

Threads publishes in two steps (https://developers.facebook.com/docs/threads/posts/): a media container is made
(POST /{user-id}/threads), then published (POST /{user-id}/threads_publish?creation_id=...). The container id
is the delivery's retry identity: it is stored with the delivery (State.save_threads_container) BEFORE it is
published, and a container publishes once. Every later attempt asks for the stored container's status
(GET /{container-id}?fields=status,error_message; https://developers.facebook.com/docs/threads/troubleshooting):
FINISHED -- never published, publish it; PUBLISHED -- the post exists, find it among the account's recent threads
(by the entry's permalink in its text) and record it; EXPIRED -- it was never published within 24 hours, make a
new one; ERROR -- Meta could not prepare it (an image it could not fetch), give up with its words; IN_PROGRESS --
ask again later. No path posts a second time.

Quota: 250 published posts per 24 hours (https://developers.facebook.com/docs/threads/overview/). Before each
publish bridge reads GET /{user-id}/threads_publishing_limit; when the quota is used up the delivery waits
(RateLimited) until the oldest of the account's posts of the last 24 hours leaves the window.
"""

from __future__ import annotations

import logging
import time
from datetime import datetime, timezone

from bridge.errors import OutcomeUnknown, PermanentPublishError, RateLimited, TransientPublishError
from bridge.platforms.base import Published
from bridge.platforms.threads.graph import Graph, ObjectGone
from bridge.platforms.threads.tokens import TokenKeeper
from bridge.state import DeliveryRow


log = logging.getLogger("bridge.threads")

QUOTA_WINDOW = 86400.0
QUOTA_WAIT_UNKNOWN = 3600.0  # when no post of ours tells when the window moves: look again in an hour
THREAD_FIELDS = "id,permalink,text,timestamp,link_attachment_url"


def make_target(context) -> "ThreadsTarget":
    """Platform.make_target."""
    return ThreadsTarget(context.account, context.settings, context.secret.reveal(), context.state,
                         user_agent=context.user_agent, connect_timeout=context.connect_timeout,
                         read_timeout=context.read_timeout, total_timeout=context.total_timeout)


class ThreadsTarget:
    platform = "threads"

    def __init__(self, account: str, settings, token: str, state, *, user_agent: str | None = None,
                 connect_timeout: float = 10.0, read_timeout: float = 30.0, total_timeout: float = 60.0,
                 clock=time.time) -> None:
        self.account, self.settings, self.state, self.clock = account, settings, state, clock
        self.graph = Graph(settings.server_url, account, user_agent=user_agent, connect_timeout=connect_timeout,
                           read_timeout=read_timeout, total_timeout=total_timeout, clock=clock)
        self.tokens = TokenKeeper(self.graph, state, account, token, clock)
        self._user: dict | None = None

    # --- the account -----------------------------------------------------------------------------------------

    def _call(self, method: str, path: str, params: dict | None = None) -> dict:
        return self.graph.call(method, path, {**(params or {}), "access_token": self.tokens.token()})

    def user(self) -> dict:
        """{"id", "username"} of the token's owner (GET /me), read once per process."""
        if self._user is None:
            self._user = self._call("GET", "me", {"fields": "id,username"})
            self._remember(user_id=self._user.get("id"), username=self._user.get("username"))
        return self._user

    def quota(self) -> dict:
        """{"quota_usage", "quota_total", "quota_duration"} from threads_publishing_limit."""
        answer = self._call("GET", f"{self.user()['id']}/threads_publishing_limit", {"fields": "quota_usage,config"})
        data = (answer.get("data") or [{}])[0]
        config = data.get("config") or {}
        quota = {"quota_usage": int(data.get("quota_usage") or 0), "quota_total": int(config.get("quota_total") or 250),
                 "quota_duration": int(config.get("quota_duration") or QUOTA_WINDOW), "at": self.clock()}
        self._remember(quota=quota)
        return quota

    def _remember(self, **facts) -> None:
        current = self.state.account(self.account).get("platform_status") or {}
        self.state.save_platform_status(self.account, {**current, **facts})

    def keep_alive(self) -> None:
        """Target.keep_alive: the keeper refreshes the token once it is a day old (no request otherwise)."""
        self.tokens.token()

    def render_limits(self, strict: bool = False) -> dict | None:
        return {"strict": True} if strict else None

    # --- publishing ------------------------------------------------------------------------------------------

    def publish(self, delivery: DeliveryRow, payload: dict) -> Published:
        user_id = self.user()["id"]
        quota = self._wait_for_quota()
        stored = self.state.threads_container(delivery.id)
        container = None
        if stored is not None:
            answer = self._container(stored["container_id"])
            if answer.get("status") == "PUBLISHED":
                return self._published(delivery, payload, stored)
            if answer.get("status") != "EXPIRED":  # EXPIRED (or gone): never published; a new one replaces it
                container = self._ready(stored["container_id"], answer)
        if container is None:
            container = self._create(user_id, payload)
            self.state.save_threads_container(delivery.id, container, self.clock())
            if payload.get("media_type") != "TEXT":  # Meta fetches the image first
                container = self._ready(container, self._container(container))
        answer = self._call("POST", f"{user_id}/threads_publish", {"creation_id": container})
        media_id = str(answer["id"])
        self._remember(quota={**quota, "quota_usage": quota["quota_usage"] + 1})  # as `status` should show it now
        link = self._call("GET", media_id, {"fields": "permalink"}).get("permalink")
        return Published(remote_id=media_id, url=link)

    def find_existing(self, delivery: DeliveryRow) -> Published | None:
        stored = self.state.threads_container(delivery.id)
        if stored is None:
            return None  # no container was stored, so none was published: posting is safe
        if self._container(stored["container_id"]).get("status") != "PUBLISHED":
            return None  # publish() takes it from there: the same container, or a new one when it expired
        return self._published(delivery, delivery.payload or {}, stored)

    def edit(self, delivery: DeliveryRow, payload: dict) -> Published:
        raise PermanentPublishError("Threads' API cannot edit a post; the post stays as it was", not_posted=True)

    def delete(self, delivery: DeliveryRow) -> None:
        """DELETE /{threads-media-id} (https://developers.facebook.com/docs/threads/posts/delete-posts: the token
        needs threads_delete; at most 100 deletes a day per account); a post already gone counts as deleted."""
        try:
            self._call("DELETE", delivery.remote_id)
        except ObjectGone:
            log.info("account %s: Threads post %s was already gone", self.account, delivery.remote_id)

    @staticmethod
    def _ready(container: str, answer: dict) -> str:
        """`container` when it can be published (FINISHED), else why not."""
        status = answer.get("status")
        if status == "IN_PROGRESS":
            raise TransientPublishError("Threads is still preparing the post (fetching its image); it is published "
                                        "at the next attempt")
        if status == "ERROR":
            raise PermanentPublishError(f"Threads could not prepare the post: {answer.get('error_message') or 'UNKNOWN'}"
                                        " (an image must be on a public server Meta can fetch)", not_posted=True)
        return container

    def _create(self, user_id: str, payload: dict) -> str:
        params = {"media_type": payload["media_type"], "text": payload["text"]}
        if payload["media_type"] == "TEXT":
            params["link_attachment"] = payload.get("link_attachment")
        else:
            params.update(image_url=payload.get("image_url"), alt_text=payload.get("alt_text"))
        return str(self._call("POST", f"{user_id}/threads", params)["id"])

    def _container(self, container_id: str) -> dict:
        """{"status", "error_message"?} of a container; EXPIRED also for one Meta no longer knows (it refuses
        the id as invalid)."""
        try:
            return self._call("GET", container_id, {"fields": "status,error_message"})
        except PermanentPublishError:
            return {"status": "EXPIRED"}

    def _published(self, delivery: DeliveryRow, payload: dict, stored: dict) -> Published:
        """The post a PUBLISHED container made, among the account's threads since the container was made."""
        answer = self._call("GET", f"{self.user()['id']}/threads",
                            {"fields": THREAD_FIELDS, "since": int(stored["created_at"]) - 60, "limit": 100})
        for thread in answer.get("data") or []:
            text = thread.get("text") or ""
            if (payload.get("text") and text == payload["text"]) or (delivery.link and delivery.link in text):
                return Published(remote_id=str(thread["id"]), url=thread.get("permalink"))
        raise OutcomeUnknown(
            f"Threads says container {stored['container_id']} was published, but no recent thread of the account "
            f"carries {delivery.link}",
            f"look at your Threads profile: if the post is there, `bridge retry` would not post it again anyway "
            f"(the container publishes once); `bridge retry --force --account {self.account}` looks again")

    def _wait_for_quota(self) -> dict:
        quota = self.quota()
        if quota["quota_usage"] < quota["quota_total"]:
            return quota
        now = self.clock()
        ours = self.state.posted_times_since(self.account, now - quota["quota_duration"])
        until = (min(ours) + quota["quota_duration"]) if ours else now + QUOTA_WAIT_UNKNOWN
        until = max(until, now + 60)
        raise RateLimited(f"the Threads publishing quota is used up ({quota['quota_usage']}/{quota['quota_total']} "
                          "posts in 24 hours); the posts wait, none is lost",
                          retry_at=datetime.fromtimestamp(until, timezone.utc))

    # --- doctor ----------------------------------------------------------------------------------------------

    def diagnose(self) -> dict:
        user = self.user()
        quota = self.quota()
        kept = self.tokens.record()
        notes = [f"publishing quota {quota['quota_usage']}/{quota['quota_total']} posts in 24 hours"]
        return {"account": f"@{user.get('username') or user.get('id')}", "notes": notes, "problems": [],
                "token_expires_at": kept["expires_at"], "quota": quota}

    def close(self) -> None:
        self.graph.close()
