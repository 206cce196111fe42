"""A Threads API fake on 127.0.0.1, built from Meta's reference (reference_examples.json holds the examples it is
checked against, with their source addresses; tests/test_threads_conformance.py replays them).

    with ThreadsFake() as fake:
        token = fake.add_user("writer")          # a long-lived token of a new user
        ...                                       # graph_url = fake.url
        fake.inject("POST /v1.0/{user}/threads_publish", "lost")

Modelled: container create (TEXT, IMAGE), container status (FINISHED / PUBLISHED / EXPIRED after 24 h / ERROR for
an image URL that is not public), publish (once per container, the 250-per-24-hours quota), the user's threads,
the publishing limit, deleting one's own post (with threads_delete), replies by other users (`reply`, `hide`, `delete`) read through /conversation and /replies,
media insights (`like`, `repost`, `quote`; refused to a token without threads_manage_insights), the code ->
short-lived -> long-lived token exchange, refresh (only tokens at least 24 hours
old and not expired; 60 days each), Meta's error bodies. `clock` is injectable, so 59 days pass in a test.
Faults for the next matching request: 503, "rate" (code 4 with Retry-After), "drop" (the connection is cut before
anything happens), "lost" (it happens, the answer never comes), ("answer", status, body) (that answer instead).
"""

from __future__ import annotations

import base64
import calendar
import http.server
import itertools
import json
import re
import secrets
import socket
import threading
import time
from dataclasses import dataclass, field
from urllib.parse import parse_qs, urlsplit

DAY = 86400
LONG_LIVED = 60 * DAY
EXPIRES_IN = 5183944  # what Meta's example answers (a long-lived token, seconds)
QUOTA_TOTAL = 250
MAX_TEXT = 500
MAX_LINKS = 5
PUBLIC_IMAGE = re.compile(r"^https?://(?!127\.|localhost|10\.|192\.168\.)")
_URL = re.compile(r"https?://[^\s]+")
_EMOJI = re.compile("[\U0001F000-\U0001FAFF\u2600-\u27BF]")


INSIGHTS = "threads_manage_insights"
DELETE = "threads_delete"
ALL_SCOPES = frozenset({"threads_basic", "threads_content_publish", INSIGHTS, DELETE})
# Meta's reference: conversation/replies fields (developers.facebook.com/docs/threads/retrieve-and-manage-replies/
# replies-and-conversations) and media insights metrics (developers.facebook.com/docs/threads/insights)
REPLY_FIELDS = ("id", "text", "username", "permalink", "timestamp", "media_product_type", "media_type", "shortcode",
                "media_url", "thumbnail_url", "children",
                "has_replies", "root_post", "replied_to", "is_reply", "hide_status")
REPLY_PAGE = 25  # replies per page (the fake's; Meta does not document its page size)
METRICS = ("views", "likes", "replies", "reposts", "quotes", "shares")


@dataclass
class Token:
    user_id: str
    kind: str  # "short" | "long"
    issued_at: float
    expires_at: float
    scopes: frozenset = ALL_SCOPES


@dataclass
class User:
    id: str
    username: str
    name: str = ""
    threads_biography: str = ""
    threads_profile_picture_url: str = "https://scontent.example/profile.jpg"
    threads: list[dict] = field(default_factory=list)  # newest first
    published_at: list[float] = field(default_factory=list)


def text_length(text: str) -> int:
    """Meta: 500 characters, an emoji as its UTF-8 bytes (per code point here; the fake's reading)."""
    return sum(len(ch.encode()) if _EMOJI.match(ch) else 1 for ch in text)


class ThreadsFake:
    APP_ID = "990602627938098"  # the App ID in Meta's examples
    APP_SECRET = "fake-app-secret-a1b2C3D4"

    def __init__(self, clock=time.time, mutation: str | None = None) -> None:
        self.clock = clock
        self.mutation = mutation  # a planted defect the conformance test must catch
        self.users: dict[str, User] = {}
        self.tokens: dict[str, Token] = {}
        self.codes: dict[str, str] = {}  # authorization code -> user id
        self.containers: dict[str, dict] = {}
        self.media: dict[str, dict] = {}
        self.faults: list[tuple[str, str]] = []
        self.requests: list[tuple[str, str, dict]] = []  # (method, path, params) as they came
        self.seen: list[tuple[float, str]] = []  # (time.time() on arrival, "METHOD /path"): real time, for pacing
        self.quota_total = QUOTA_TOTAL
        self._ids = itertools.count(17889615691921648)
        self._lock = threading.RLock()
        self._server: http.server.ThreadingHTTPServer | None = None

    # --- control -----------------------------------------------------------------------------------------------

    def start(self) -> "ThreadsFake":
        fake = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args) -> None:
                pass

            def do_GET(self) -> None:
                fake._serve(self, "GET")

            def do_POST(self) -> None:
                fake._serve(self, "POST")

            def do_DELETE(self) -> None:
                fake._serve(self, "DELETE")

        self._server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()

    def __enter__(self) -> "ThreadsFake":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    @property
    def url(self) -> str:
        assert self._server is not None
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def _new_id(self) -> str:
        return str(next(self._ids))

    def add_user(self, username: str, *, issued_at: float | None = None, scopes=ALL_SCOPES) -> str:
        """A user with a long-lived token (as `bridge login threads` leaves one); returns the token."""
        with self._lock:
            user = User(self._new_id(), username, name=username.title(), threads_biography=f"{username}'s bio")
            self.users[user.id] = user
            return self.issue(user.id, "long", issued_at, scopes)

    def issue(self, user_id: str, kind: str, issued_at: float | None = None, scopes=ALL_SCOPES) -> str:
        now = self.clock() if issued_at is None else issued_at
        token = "TH" + secrets.token_urlsafe(48).replace("-", "A").replace("_", "B")
        self.tokens[token] = Token(user_id, kind, now, now + (3600 if kind == "short" else LONG_LIVED),
                                   frozenset(scopes))
        return token

    # --- the way back: what other users do to a post ------------------------------------------------------------

    def reply(self, username: str, to_id: str, text: str, *, private: bool = False) -> str:
        """`username` (a new user the first time) replies to a post or a reply; returns the reply's media id.
        A private profile's reply comes back without username and permalink, as Meta says it does."""
        with self._lock:
            parent = self.media[to_id]
            root = parent.get("_root") or to_id
            media_id = self._new_id()
            shortcode = secrets.token_urlsafe(8).replace("-", "a").replace("_", "b")
            self.media[media_id] = {
                "id": media_id, "media_product_type": "THREADS", "media_type": "TEXT_POST", "text": text,
                "username": username, "permalink": f"https://www.threads.net/@{username}/post/{shortcode}",
                "timestamp": time.strftime("%Y-%m-%dT%H:%M:%S+0000", time.gmtime(self.clock())),
                "shortcode": shortcode, "is_quote_post": False, "_at": self.clock(), "_root": root,
                "_parent": to_id, "_hide": "NOT_HUSHED", "_private": private,
            }
            return media_id

    def hide(self, reply_id: str, status: str = "HIDDEN") -> None:
        with self._lock:
            self.media[reply_id]["_hide"] = status

    def delete(self, media_id: str) -> None:
        with self._lock:
            self.media.pop(media_id, None)
            for user in self.users.values():
                user.threads = [thread for thread in user.threads if thread["id"] != media_id]

    def like(self, media_id: str, count: int = 1) -> None:
        self._bump(media_id, "_likes", count)

    def repost(self, media_id: str, count: int = 1) -> None:
        self._bump(media_id, "_reposts", count)

    def quote(self, media_id: str, count: int = 1) -> None:
        self._bump(media_id, "_quotes", count)

    def _bump(self, media_id: str, key: str, count: int) -> None:
        with self._lock:
            self.media[media_id][key] = self.media[media_id].get(key, 0) + count

    def authorization_code(self, user_id: str) -> str:
        code = secrets.token_urlsafe(24)
        self.codes[code] = user_id
        return code

    def user_of(self, token: str) -> User:
        return self.users[self.tokens[token].user_id]

    def revoke(self, token: str) -> None:
        with self._lock:
            self.tokens.pop(token, None)

    def inject(self, request: str, fault: str) -> None:
        """For the next request whose "METHOD /path" matches `request` ({user}, {id} match any id)."""
        pattern = re.escape(request).replace(r"\{user\}", r"\d+").replace(r"\{id\}", r"\d+")
        with self._lock:
            self.faults.append((pattern, fault))

    def clear_faults(self) -> None:
        with self._lock:
            self.faults.clear()

    def posts(self, token_or_user: str) -> list[dict]:
        user = self.users.get(token_or_user) or self.user_of(token_or_user)
        return list(reversed(user.threads))

    # --- serving -----------------------------------------------------------------------------------------------

    def _serve(self, handler, method: str) -> None:
        parts = urlsplit(handler.path)
        params = {key: values[-1] for key, values in parse_qs(parts.query, keep_blank_values=True).items()}
        length = int(handler.headers.get("Content-Length") or 0)
        body = handler.rfile.read(length) if length else b""
        if body and "x-www-form-urlencoded" in (handler.headers.get("Content-Type") or ""):
            params.update({key: values[-1] for key, values in parse_qs(body.decode(), keep_blank_values=True).items()})
        auth = handler.headers.get("Authorization") or ""
        if auth.startswith("Bearer ") and "access_token" not in params:
            params["access_token"] = auth[7:]
        line = f"{method} {parts.path}"
        with self._lock:
            self.requests.append((method, parts.path, dict(params)))
            self.seen.append((time.time(), line))
            fault = next(((pattern, kind) for pattern, kind in self.faults if re.fullmatch(pattern, line)), None)
            if fault:
                self.faults.remove(fault)
        kind = fault[1] if fault else None
        if kind == "drop":
            handler.close_connection = True
            handler.connection.shutdown(socket.SHUT_RDWR)
            return
        if kind == 503:
            return self._send(handler, 503, {"error": {"message": "Service temporarily unavailable", "type":
                                                       "OAuthException", "code": 2, "fbtrace_id": "AfakeTrace"}})
        if isinstance(kind, tuple):  # ("answer", status, body): the fake's own words, sent for another request
            return self._send(handler, kind[1], kind[2])
        if kind == "rate":
            return self._send(handler, 400, _error("Application request limit reached", 4, "OAuthException"),
                              {"Retry-After": "2"})
        with self._lock:
            status, answer = self._route(method, parts.path, params)
        if kind == "lost":
            handler.close_connection = True
            handler.connection.shutdown(socket.SHUT_RDWR)
            return
        self._send(handler, status, answer)

    @staticmethod
    def _send(handler, status: int, answer: dict, headers: dict | None = None) -> None:
        data = json.dumps(answer).encode()
        handler.send_response(status)
        handler.send_header("Content-Type", "application/json; charset=UTF-8")
        handler.send_header("Content-Length", str(len(data)))
        for key, value in (headers or {}).items():
            handler.send_header(key, value)
        handler.end_headers()
        handler.wfile.write(data)

    def _route(self, method: str, path: str, params: dict) -> tuple[int, dict]:
        now = self.clock()
        if method == "POST" and path == "/oauth/access_token":
            return self._code_exchange(params)
        if method == "GET" and path == "/access_token":
            return self._long_lived(params)
        if method == "GET" and path == "/refresh_access_token":
            return self._refresh(params)
        match = re.fullmatch(r"/v1\.0/(me|\d+)(?:/(threads|threads_publish|threads_publishing_limit|conversation|replies|"
                             r"insights))?", path)
        if not match:
            return 400, _error(f"Unknown path components: {path}", 2500, "OAuthException")
        token = self.tokens.get(params.get("access_token") or "")
        if token is None or token.expires_at <= now:
            return 400, _error("Error validating access token: Session has expired or the token is invalid.", 190,
                               "OAuthException")
        user = self.users[token.user_id]
        node, edge = match.group(1), match.group(2)
        if edge in ("conversation", "replies", "insights") and method == "GET":
            return self._media_edge(token, node, edge, params)
        if node != "me" and node != user.id and edge is not None:
            return 400, _error("Unsupported request: the user id does not belong to this token", 100)
        if edge is None and method == "DELETE":
            return self._delete(token, user, node)
        if edge is None:
            if node in ("me", user.id):
                profile = {"id": user.id, "username": user.username, "name": user.name,
                           "threads_profile_picture_url": user.threads_profile_picture_url,
                           "threads_biography": user.threads_biography}
                return 200, self._fields(profile, params)
            return self._node(node, params, now)
        if edge == "threads" and method == "POST":
            return self._create(user, params, now)
        if edge == "threads" and method == "GET":
            return self._list(user, params)
        if edge == "threads_publish" and method == "POST":
            return self._publish(user, params, now)
        if edge == "threads_publishing_limit" and method == "GET":
            usage = len([at for at in user.published_at if at > now - DAY])
            if self.mutation == "publishing-limit-flat":
                return 200, {"quota_usage": usage, "quota_total": self.quota_total}
            return 200, {"data": [{"quota_usage": usage, "config": {"quota_total": self.quota_total,
                                                                      "quota_duration": DAY}}]}
        return 400, _error(f"Unsupported {method} request.", 100)

    def _fields(self, obj: dict, params: dict) -> dict:
        wanted = [name for name in (params.get("fields") or "id").split(",") if name]
        return {name: obj[name] for name in ["id", *wanted] if name in obj}

    def _create(self, user: User, params: dict, now: float) -> tuple[int, dict]:
        media_type = params.get("media_type")
        text = params.get("text") or ""
        if media_type not in ("TEXT", "IMAGE"):
            return 400, _error("Param media_type must be one of {TEXT, IMAGE, VIDEO, CAROUSEL}", 100)
        if media_type == "TEXT" and not text:
            return 400, _error("Param text is required for TEXT media_type", 100)
        if media_type == "IMAGE" and not params.get("image_url"):
            return 400, _error("Param image_url is required for IMAGE media_type", 100)
        if text_length(text) > MAX_TEXT:
            return 400, _error("The text is too long: it exceeds the maximum of 500 characters.", 100)
        links = set(_URL.findall(text)) | ({params["link_attachment"]} if params.get("link_attachment") else set())
        if len(links) > MAX_LINKS:
            return 400, _error("THREADS_API__LINK_LIMIT_EXCEEDED: a post may contain at most 5 links.", 100)
        container = {"id": self._new_id(), "user": user.id, "params": dict(params), "created_at": now,
                     "status": "FINISHED", "error_message": None}
        if media_type == "IMAGE" and not PUBLIC_IMAGE.match(params["image_url"]):
            container.update(status="ERROR", error_message="FAILED_DOWNLOADING_IMAGE")
        self.containers[container["id"]] = container
        key = "container_id" if self.mutation == "create-renamed-id" else "id"
        return 200, {key: container["id"]}

    def _publish(self, user: User, params: dict, now: float) -> tuple[int, dict]:
        container = self.containers.get(params.get("creation_id") or "")
        if container is None or container["user"] != user.id:
            return 400, _error("Param creation_id must be a valid media container id", 100)
        if container["status"] == "PUBLISHED":
            return 400, _error("The media container has already been published", 100)
        if container["status"] != "FINISHED" or now - container["created_at"] > DAY:
            return 400, _error(f"The media container is not ready to be published ({container['status']})", 100)
        if len([at for at in user.published_at if at > now - DAY]) >= self.quota_total:
            return 400, _error("The user has reached the publishing limit (250 posts in 24 hours)", 4)
        media_id = self._new_id()
        shortcode = secrets.token_urlsafe(8).replace("-", "a").replace("_", "b")
        params_in = container["params"]
        thread = {"id": media_id, "media_product_type": "THREADS",
                  "media_type": "TEXT_POST" if params_in["media_type"] == "TEXT" else "IMAGE",
                  "permalink": f"https://www.threads.net/@{user.username}/post/{shortcode}",
                  "owner": {"id": user.id}, "username": user.username, "text": params_in.get("text", ""),
                  "timestamp": time.strftime("%Y-%m-%dT%H:%M:%S+0000", time.gmtime(now)), "shortcode": shortcode,
                  "is_quote_post": False, "link_attachment_url": params_in.get("link_attachment"),
                  "media_url": params_in.get("image_url"),
                  "alt_text": params_in.get("alt_text"), "_at": now}
        container["status"] = "PUBLISHED"
        user.threads.insert(0, thread)
        user.published_at.append(now)
        self.media[media_id] = thread
        tags = re.findall(r"(?<!\w)#(\w+)", thread["text"])
        thread["_topic"] = tags[0] if tags else None  # Threads links the first tag of a post
        return 200, {"id": media_id}

    def _node(self, node: str, params: dict, now: float) -> tuple[int, dict]:
        if node in self.containers:
            container = self.containers[node]
            status = container["status"]
            if status == "FINISHED" and now - container["created_at"] > DAY:
                status = "EXPIRED"
            answer = {"status": status, "id": node}
            if container["error_message"] and "error_message" in (params.get("fields") or ""):
                answer["error_message"] = container["error_message"]
            return 200, answer
        if node in self.media:
            return 200, self._fields({k: v for k, v in self.media[node].items() if not k.startswith("_") and v is not None},
                                     params)
        return 400, _error(f"Object with ID '{node}' does not exist, cannot be loaded due to missing permissions, "
                           "or does not support this operation", 100, subcode=33)

    def _delete(self, token: Token, user: User, node: str) -> tuple[int, dict]:
        """DELETE /{threads-media-id} (developers.facebook.com/docs/threads/posts/delete-posts): one of the user's
        own posts, with threads_delete; anything else is an object this token cannot see."""
        if DELETE not in token.scopes:
            return 403, _error("(#10) Application does not have permission for this action", 10, "OAuthException")
        if not any(thread["id"] == node for thread in user.threads):
            return 400, _error(f"Object with ID '{node}' does not exist, cannot be loaded due to missing permissions, "
                               "or does not support this operation", 100, subcode=33)
        self.delete(node)
        return 200, {"success": True, "deleted_id": node}

    def _media_edge(self, token: Token, node: str, edge: str, params: dict) -> tuple[int, dict]:
        media = self.media.get(node)
        if media is None:
            return 400, _error(f"Object with ID '{node}' does not exist, cannot be loaded due to missing permissions, "
                               "or does not support this operation", 100, subcode=33)
        if edge == "insights":
            if INSIGHTS not in token.scopes:
                return 403, _error("(#10) Application does not have permission for this action", 10, "OAuthException")
            wanted = [name for name in (params.get("metric") or "").split(",") if name]
            if not wanted or any(name not in METRICS for name in wanted):
                return 400, _error(f"(#100) metric must be one of the following values: {', '.join(METRICS)}", 100)
            values = {"likes": media.get("_likes", 0), "reposts": media.get("_reposts", 0),
                      "quotes": media.get("_quotes", 0), "views": 0, "shares": 0,
                      "replies": len([m for m in self.media.values() if m.get("_root") == node])}
            key = "value" if self.mutation != "insights-bare-value" else "count"
            return 200, {"data": [{"name": name, "period": "lifetime", "values": [{key: values[name]}],
                                   "title": name.title(), "description": f"The number of {name} on your post.",
                                   "id": f"{node}/insights/{name}/lifetime"} for name in wanted]}
        wanted = [name for name in (params.get("fields") or "id").split(",") if name]
        if any(name not in REPLY_FIELDS for name in wanted):
            return 400, _error("(#100) Tried accessing nonexisting field", 100)
        key = "_root" if edge == "conversation" else "_parent"
        found = sorted((m for m in self.media.values() if m.get(key) == node), key=lambda m: (m["_at"], int(m["id"])))
        if params.get("reverse", "true") != "false":
            found.reverse()
        # Graph API cursor paging (https://developers.facebook.com/docs/graph-api/results): `after` is an opaque
        # cursor; `next` is there only while more pages follow. The fake's cursor: the offset, base64-encoded.
        start = int(base64.b64decode(params["after"]).decode()) if params.get("after") else 0
        page = found[start:start + REPLY_PAGE]
        data = [self._fields(self._reply_view(m), {"fields": ",".join(wanted)}) for m in page]
        end = base64.b64encode(str(start + len(page)).encode()).decode()
        paging = {"cursors": {"before": base64.b64encode(str(start).encode()).decode(), "after": end}}
        if start + REPLY_PAGE < len(found):
            paging["next"] = f"{self.url}/v1.0/{node}/{edge}?after={end}"
        return 200, {"data": data, "paging": paging}

    def _reply_view(self, media: dict) -> dict:
        view = {k: v for k, v in media.items() if not k.startswith("_")}
        if media["_private"]:  # Meta: username and permalink "only work for public users and your own user"
            view.pop("username"), view.pop("permalink")
        has = any(m.get("_parent") == media["id"] for m in self.media.values())
        parent = {"id": media["_parent"]} if self.mutation != "replied-to-flat" else media["_parent"]
        view.update(has_replies=has, root_post={"id": media["_root"]}, replied_to=parent, is_reply=True,
                    hide_status=media["_hide"])
        return view

    def _list(self, user: User, params: dict) -> tuple[int, dict]:
        since, until = _moment(params.get("since"), 0.0), _moment(params.get("until"), float("inf"))
        limit = min(int(params.get("limit") or 25), 100)
        found = [thread for thread in user.threads if since <= thread["_at"] <= until][:limit]
        data = [self._fields({k: v for k, v in thread.items() if not k.startswith("_") and v is not None}, params)
                for thread in found]
        return 200, {"data": data, "paging": {"cursors": {"before": "BEFORE_CURSOR", "after": "AFTER_CURSOR"}}}

    def _code_exchange(self, params: dict) -> tuple[int, dict]:
        if params.get("client_id") != self.APP_ID or params.get("client_secret") != self.APP_SECRET:
            return 400, _error("Error validating client secret.", 1, "OAuthException")
        if params.get("grant_type") != "authorization_code" or not params.get("redirect_uri"):
            return 400, _error("Invalid grant_type or missing redirect_uri", 100, "OAuthException")
        user_id = self.codes.pop(params.get("code") or "", None)
        if user_id is None:
            return 400, _error("Invalid verification code format.", 100, "OAuthException")
        return 200, {"access_token": self.issue(user_id, "short"), "user_id": int(user_id)}

    def _long_lived(self, params: dict) -> tuple[int, dict]:
        token = self.tokens.get(params.get("access_token") or "")
        if params.get("grant_type") != "th_exchange_token" or params.get("client_secret") != self.APP_SECRET:
            return 400, _error("Error validating client secret.", 1, "OAuthException")
        if token is None or token.kind != "short" or token.expires_at <= self.clock():
            return 400, _error("Error validating access token: Session has expired.", 190, "OAuthException")
        return 200, {"access_token": self.issue(token.user_id, "long"), "token_type": "bearer",
                     "expires_in": EXPIRES_IN}

    def _refresh(self, params: dict) -> tuple[int, dict]:
        now = self.clock()
        token = self.tokens.get(params.get("access_token") or "")
        if params.get("grant_type") != "th_refresh_token":
            return 400, _error("Unsupported grant_type", 100, "OAuthException")
        if token is None or token.kind != "long" or token.expires_at <= now:
            return 400, _error("Error validating access token: Session has expired.", 190, "OAuthException")
        if now - token.issued_at < DAY:
            return 400, _error("The access token is less than 24 hours old and cannot be refreshed yet.", 100,
                               "OAuthException")
        return 200, {"access_token": self.issue(token.user_id, "long"), "token_type": "bearer",
                     "expires_in": EXPIRES_IN}


def _moment(value: str | None, default: float) -> float:
    """since/until: a Unix timestamp or a date (Meta takes anything strtotime() reads; the fake: these two)."""
    if not value:
        return default
    if value.isdigit():
        return float(value)
    return calendar.timegm(time.strptime(value[:10], "%Y-%m-%d"))


def _error(message: str, code: int, kind: str = "THApiException", subcode: int | None = None) -> dict:
    error = {"message": message, "type": kind, "code": code, "fbtrace_id": "AfakeTrace" + secrets.token_hex(4)}
    if subcode is not None:
        error["error_subcode"] = subcode
    return {"error": error}
