"""The contract table: one row per publishing target, each run against its real or proven test server.

A row (ContractTarget) names the session fixture of its server (tests/contract/conftest.py); that fixture gives a ContractServer,
which makes a fresh ContractAccount for each test. Everything a case needs to know about a platform is behind
these two small interfaces: how to write the account's config section and credential, how to read the account's
posts back, how to revoke and restore the credential, how to make the server fail the next post. The cases
(test_contract.py) drive bridge the way a user does -- a config file and `bridge poll` -- and never import a
platform's module, so they follow a platform wherever its code lives.

A new platform gets the whole suite by adding its fixture to TABLE (see README.md in this folder).
"""

from __future__ import annotations

import html.parser
import itertools
import os
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Callable, Protocol

import httpx

from bridge.faults import POINTS
from tests.bluesky_helpers import record_links

# How a server can be made to fail the next post (ContractAccount.fail_next_post).
TRANSIENT = "transient"  # a 5xx, then the server works again
CONNECTION_RESET = "connection-reset"  # the connection is cut before the server sees the request
RATE_LIMITED = "rate-limited"  # a 429 with the platform's reset header, a second or two ahead (or, where the
# platform states no reset time, its own rate-limit answer: rate_limit_reset_stated=False)
INVALID = "invalid"  # the server refuses this post as invalid (it keeps refusing it)
ANSWER_LOST = "answer-lost"  # the post is made, its answer never reaches bridge
FAULTS = (TRANSIENT, CONNECTION_RESET, RATE_LIMITED, INVALID, ANSWER_LOST)

RESET_SECONDS = 2  # rate limits reset this soon: the suite waits for real, so not a real minute

_serial = itertools.count()


def unique(prefix: str) -> str:
    """A name no other test of this session uses (accounts live on shared servers)."""
    return f"{prefix}{os.getpid() % 10000}x{next(_serial)}"


@dataclass(frozen=True)
class RemotePost:
    """A post as the server shows it."""

    remote_id: str  # what bridge records as the delivery's remote_id (status id, at:// URI, event id)
    text: str  # its text as people read it
    links: tuple[str, ...]  # every link it carries (Mastodon's hrefs, Bluesky's link facets and card)
    images: int = 0  # attached images (Mastodon's media) or a card's thumbnail (Bluesky)

    def carries(self, link: str) -> bool:
        """As a link, or as text (Mastodon makes no link of a URL with an IP address, like the tests' pages)."""
        return link in self.links or link in self.text


class ContractAccount(Protocol):
    """One account on a row's server, fresh for one test."""

    credential: str  # the secret bridge posts with now (read from an environment variable)

    def config_section(self, credential_env: str) -> str:
        """The body of its `[accounts.NAME]` table (TOML lines), taking the credential from `credential_env`."""

    def posts(self) -> list[RemotePost]:
        """Every post of the account, as the server shows them."""

    def post_attempts(self) -> list[float]:
        """When (epoch seconds) each attempt to make a post reached the server (or the proxy in front of it)."""

    def revoke(self) -> None:
        """Revoke the credential on the server, as the writer would (revoked token, deleted app password)."""

    def restore(self) -> str:
        """Make a new working credential (set as `credential`) and return it."""

    def fail_next_post(self, fault: str) -> None:
        """Make the server fail the next attempt to post, the way FAULTS describe."""

    def invalid_message(self) -> str:
        """A part of the server's words for the INVALID refusal, which bridge must keep."""


class ContractServer(Protocol):
    """A row's server for the whole session."""

    def new_account(self) -> ContractAccount: ...

    def faults_pending(self) -> int:
        """How many faults asked for have not happened yet (a case checks that its fault did happen)."""

    def reset(self) -> None:
        """Drop any fault left over from a test (one that ended before its fault was used)."""


@dataclass(frozen=True)
class ContractTarget:
    """One row of the table."""

    name: str  # the test id
    fixture: str  # the session fixture (tests/contract/conftest.py) that gives its ContractServer
    # A case this target is known to fail ({test function name: the defect and where it is fixed}): the case runs
    # as a strict xfail, so it turns red the day the defect is fixed and the entry has to go
    defects: dict[str, str] = field(default_factory=dict)
    crash_points: tuple[str, ...] = POINTS  # the crash points (bridge/faults.py) a post to this platform passes
    # True: the platform's rate limit says when it resets (a 429's X-RateLimit-Reset, ratelimit-reset) and bridge
    # waits for that; False: it says nothing (a Nostr relay's `rate-limited:`), and bridge backs off by retry_delay,
    # doubling while the server keeps refusing
    rate_limit_reset_stated: bool = True


TABLE = [
    ContractTarget("bluesky-pds", "contract_pds"),
    ContractTarget("mastodon-fake", "contract_fake_mastodon"),
    ContractTarget("takahe-fake", "contract_fake_takahe"),
    ContractTarget("gotosocial-fake", "contract_fake_gotosocial"),
    ContractTarget("akkoma-fake", "contract_fake_akkoma"),
    ContractTarget("takahe-real", "contract_takahe"),
]


class ProxiedServer:
    """A row's server behind a FaultProxy (tests/faultproxy.py); `account()` makes a fresh account on it."""

    def __init__(self, proxy, account: Callable[[], ContractAccount]) -> None:
        self.proxy = proxy
        self._account = account

    def new_account(self) -> ContractAccount:
        return self._account()

    def faults_pending(self) -> int:
        return len(self.proxy.rules)

    def reset(self) -> None:
        self.proxy.clear()


# --------------------------------------------------------------------------- Mastodon's API (the fake, Takahē)

STATUSES = "POST /api/v1/statuses"
SCOPES = ["read", "write"]


class _Hrefs(html.parser.HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.links: list[str] = []
        self.text: list[str] = []

    def handle_starttag(self, tag, attrs) -> None:
        href = dict(attrs).get("href")
        if tag == "a" and href:
            self.links.append(href)
        if tag in ("br", "p") and self.text:
            self.text.append("\n")

    def handle_data(self, data: str) -> None:
        self.text.append(data)


def read_statuses(base_url: str, account_id: str, read_token: str) -> list[RemotePost]:
    """An account's statuses through Mastodon's API, oldest first: what its followers see."""
    found: list[dict] = []
    url: str | None = f"{base_url}/api/v1/accounts/{account_id}/statuses?limit=40"
    with httpx.Client(timeout=30, headers={"Authorization": f"Bearer {read_token}"}) as http:
        while url:
            response = http.get(url)
            response.raise_for_status()
            page = response.json()
            found.extend(page)
            url = response.links.get("next", {}).get("url") if page else None
    posts = []
    for status in reversed(found):
        parsed = _Hrefs()
        parsed.feed(status["content"])
        posts.append(RemotePost(str(status["id"]), "".join(parsed.text), tuple(parsed.links),
                                len(status.get("media_attachments") or [])))
    return posts


def mastodon_reset_header(seconds: float) -> dict[str, str]:
    """Mastodon's rate-limit headers (X-RateLimit-Reset in ISO 8601, as Mastodon and the servers like it send)."""
    reset = datetime.fromtimestamp(time.time() + seconds, timezone.utc)
    return {"X-RateLimit-Limit": "300", "X-RateLimit-Remaining": "0",
            "X-RateLimit-Reset": reset.strftime("%Y-%m-%dT%H:%M:%S.%fZ")}


class MastodonApiAccount:
    """What the fake and Takahē share: the config section, reading back, faults through the FaultProxy."""

    def __init__(self, proxy, account_id: str, read_token: str, credential: str) -> None:
        self.proxy = proxy
        self.account_id = account_id
        self.read_token = read_token
        self.credential = credential
        self.since = time.time()
        self.refusal = ""

    def config_section(self, credential_env: str) -> str:
        return (f'type = "mastodon"\ninstance = "{self.proxy.url}"\naccess_token = {{ env = "{credential_env}" }}\n'
                'attach_image = true\n')

    def posts(self) -> list[RemotePost]:
        return read_statuses(self.proxy.upstream_url, self.account_id, self.read_token)

    def post_attempts(self) -> list[float]:
        return [seen.at for seen in self.proxy.seen(STATUSES) if seen.at >= self.since]

    def invalid_message(self) -> str:
        return self.refusal

    def fail_next_post(self, fault: str) -> None:
        if fault == TRANSIENT:
            self.proxy.answer_next(STATUSES, 503, headers={"Content-Type": "text/html"})
        elif fault == CONNECTION_RESET:
            self.proxy.reset_next(STATUSES)
        elif fault == RATE_LIMITED:
            self.proxy.answer_next(STATUSES, 429, headers=lambda: mastodon_reset_header(RESET_SECONDS),
                                   json={"error": "Too many requests"})
        elif fault == INVALID:
            # The server's own refusal of a blank status (its status code and words), sent back for the next post
            refused = httpx.post(f"{self.proxy.upstream_url}/api/v1/statuses", data={"status": ""}, timeout=30,
                                 headers={"Authorization": f"Bearer {self.credential}"})
            assert 400 <= refused.status_code < 500, refused.text
            self.refusal = refused.json()["error"]
            self.proxy.answer_next(STATUSES, refused.status_code, json=refused.json())
        elif fault == ANSWER_LOST:
            self.proxy.lose_next(STATUSES)
        else:
            raise ValueError(fault)


class FakeAccount(MastodonApiAccount):
    """An account on the Mastodon fake: its own fault hooks for what they model (5xx, a dropped connection, 429
    with its real rate-limit headers, a lost answer); its refusal is sent back by the proxy, the fake has no hook
    for one."""

    def __init__(self, fake, proxy) -> None:
        self.fake = fake
        self.username = unique("contract")
        token = fake.add_account(self.username)
        super().__init__(proxy, fake.account_id(self.username), fake.add_token(self.username, ["read"]), token)

    def revoke(self) -> None:
        self.fake.revoke(self.credential)

    def restore(self) -> str:
        self.credential = self.fake.add_token(self.username)
        return self.credential

    def fail_next_post(self, fault: str) -> None:
        hooks = {TRANSIENT: 503, CONNECTION_RESET: "drop", RATE_LIMITED: 429, ANSWER_LOST: "lost"}
        if fault in hooks:
            self.fake.inject(STATUSES, hooks[fault])
        else:
            super().fail_next_post(fault)


class FakeServer(ProxiedServer):
    def __init__(self, fake, proxy) -> None:
        super().__init__(proxy, lambda: FakeAccount(fake, proxy))
        self.fake = fake

    def faults_pending(self) -> int:
        return len(self.fake.faults) + super().faults_pending()

    def reset(self) -> None:
        self.fake.clear_faults()
        super().reset()


class TakaheContractAccount(MastodonApiAccount):
    def __init__(self, takahe, proxy) -> None:
        self.identity = takahe.new_identity(unique("contract"))
        super().__init__(proxy, self.identity.account_id, self.identity.read_token, self.identity.token(SCOPES))
        self.takahe = takahe

    def revoke(self) -> None:
        self.takahe.admin("revoke_token", token=self.credential)

    def restore(self) -> str:
        self.credential = self.identity.token(SCOPES)
        return self.credential


# --------------------------------------------------------------------------- Bluesky (the real PDS)

CREATE_RECORD = "POST /xrpc/com.atproto.repo.createRecord"


class PdsAccount:
    def __init__(self, pds, proxy) -> None:
        self.pds, self.proxy = pds, proxy
        self.account = pds.create_account("contract")
        self.credential = self.account.app_password
        self.since = time.time()
        self.refusal = ""
        self._app_passwords = itertools.count(2)

    def config_section(self, credential_env: str) -> str:
        return (f'type = "bluesky"\nhandle = "{self.account.handle}"\nservice = "{self.proxy.url}"\n'
                f'app_password = {{ env = "{credential_env}" }}\nattach_image = true\n')

    def posts(self) -> list[RemotePost]:
        response = httpx.get(f"{self.pds.url}/xrpc/com.atproto.repo.listRecords", timeout=10,
                             params={"repo": self.account.did, "collection": "app.bsky.feed.post", "limit": 100})
        response.raise_for_status()
        return [RemotePost(record["uri"], record["value"]["text"], tuple(record_links(record["value"])),
                           _images(record["value"])) for record in reversed(response.json()["records"])]

    def post_attempts(self) -> list[float]:
        return [seen.at for seen in self.proxy.seen(CREATE_RECORD) if seen.at >= self.since]

    def _as_owner(self, method: str, body: dict) -> dict:
        """An app-password call made by the account's owner (signed in with the main password)."""
        with httpx.Client(base_url=self.pds.url, timeout=30) as http:
            session = http.post("/xrpc/com.atproto.server.createSession",
                                json={"identifier": self.account.handle, "password": self.account.password})
            session.raise_for_status()
            answer = http.post(f"/xrpc/{method}", json=body,
                               headers={"Authorization": f"Bearer {session.json()['accessJwt']}"})
            answer.raise_for_status()
            return answer.json() if answer.content else {}

    def revoke(self) -> None:
        self._as_owner("com.atproto.server.revokeAppPassword", {"name": self._name})

    def restore(self) -> str:
        self._name = f"bridge-{next(self._app_passwords)}"
        self.credential = self._as_owner("com.atproto.server.createAppPassword", {"name": self._name})["password"]
        return self.credential

    _name = "bridge"  # the app password pds_fixture makes

    def invalid_message(self) -> str:
        return self.refusal

    def fail_next_post(self, fault: str) -> None:
        if fault == TRANSIENT:
            self.proxy.answer_next(CREATE_RECORD, 502, headers={"Content-Type": "text/html"})
        elif fault == CONNECTION_RESET:
            self.proxy.reset_next(CREATE_RECORD)
        elif fault == RATE_LIMITED:
            # the PDS's ratelimit-reset (epoch seconds), counted when the answer goes out: a slow first poll on a
            # busy machine must not find the reset already past
            self.proxy.answer_next(CREATE_RECORD, 429, json={"error": "RateLimitExceeded", "message": "Rate Limit Exceeded"},
                                   headers=lambda: {"ratelimit-limit": "5000", "ratelimit-remaining": "0",
                                                    "ratelimit-reset": str(int(time.time()) + RESET_SECONDS),
                                                    "ratelimit-policy": "5000;w=3600"})
        elif fault == INVALID:
            # The PDS's own refusal of a record that breaks the lexicon (a 3001-byte text), sent back for the next
            # post: bridge's renderer never makes such a record
            with httpx.Client(base_url=self.pds.url, timeout=30) as http:
                session = http.post("/xrpc/com.atproto.server.createSession",
                                    json={"identifier": self.account.handle, "password": self.credential}).json()
                refused = http.post("/xrpc/com.atproto.repo.createRecord",
                                    headers={"Authorization": f"Bearer {session['accessJwt']}"},
                                    json={"repo": self.account.did, "collection": "app.bsky.feed.post",
                                          "record": {"$type": "app.bsky.feed.post", "text": "x" * 3001,
                                                     "createdAt": "2026-01-01T00:00:00.000Z"}})
            assert refused.status_code == 400, refused.text
            self.refusal = refused.json()["message"]
            self.proxy.answer_next(CREATE_RECORD, 400, json=refused.json())
        elif fault == ANSWER_LOST:
            self.proxy.lose_next(CREATE_RECORD)
        else:
            raise ValueError(fault)


def _images(record: dict) -> int:
    embed = record.get("embed") or {}
    return len(embed.get("images") or []) + (1 if (embed.get("external") or {}).get("thumb") else 0)


# --------------------------------------------------------------------------- Nostr (a real relay: nostr-relay)


class NostrContractAccount:
    """A writer's key on the real relay, behind a RelayProxy (tests/relayproxy.py, served as a ProxiedServer):
    revoking the credential is the relay refusing the key (`blocked:`), the fix a new key; the INVALID refusal is
    the relay's own words for an event it refuses."""

    def __init__(self, relay, proxy) -> None:
        import nostr_sdk

        self.relay, self.proxy = relay, proxy
        self.keys = [nostr_sdk.Keys.generate()]
        self.since = time.time()
        self.refusal = ""

    @property
    def credential(self) -> str:
        return self.keys[-1].secret_key().to_bech32()

    def config_section(self, credential_env: str) -> str:
        return f'type = "nostr"\nsecret_key = {{ env = "{credential_env}" }}\nrelays = ["{self.proxy.url}"]\n'

    def posts(self) -> list[RemotePost]:
        events = self.relay.events(authors=[keys.public_key().to_hex() for keys in self.keys], kinds=[1])
        return [RemotePost(event["id"], event["content"], tuple(tag[1] for tag in event["tags"] if tag[0] == "r"))
                for event in sorted(events, key=lambda event: event["created_at"])]

    def post_attempts(self) -> list[float]:
        return [seen.at for seen in self.proxy.seen() if seen.at >= self.since and seen.event.get("kind") == 1]

    def revoke(self) -> None:
        self.proxy.block(self.keys[-1].public_key().to_hex())

    def restore(self) -> str:
        import nostr_sdk

        self.keys.append(nostr_sdk.Keys.generate())
        return self.credential

    def invalid_message(self) -> str:
        return self.refusal

    def fail_next_post(self, fault: str) -> None:
        if fault == TRANSIENT:  # the relay's own failure, NIP-01's `error:` prefix (its 5xx)
            self.proxy.refuse_next("error: could not save the event, try again")
        elif fault == CONNECTION_RESET:
            self.proxy.cut_next()
        elif fault == RATE_LIMITED:
            self.proxy.refuse_next("rate-limited: slow down")
        elif fault == INVALID:
            self.refusal = self._relays_own_refusal()
            self.proxy.refuse_next(self.refusal)
        elif fault == ANSWER_LOST:
            self.proxy.lose_next()
        else:
            raise ValueError(fault)

    def _relays_own_refusal(self) -> str:
        """The relay's words for an event whose signature does not match (bridge never sends one)."""
        import json

        import nostr_sdk
        from websockets.sync.client import connect

        keys = self.keys[-1]
        draft = {"pubkey": keys.public_key().to_hex(), "created_at": int(time.time()), "kind": 1, "tags": [],
                 "content": "refuse me"}
        event = json.loads(nostr_sdk.UnsignedEvent.from_json(json.dumps(draft)).sign(keys).as_json())
        event["content"] = "changed after signing"
        with connect(self.relay.url, open_timeout=10) as ws:
            ws.send(json.dumps(["EVENT", event]))
            answer = json.loads(ws.recv(timeout=30))
        assert answer[0] == "OK" and answer[2] is False, answer
        return answer[3]


# No media upload: a note names its pictures by URL
NOSTR_CRASH_POINTS = tuple(point for point in POINTS if point != "mid-media-upload")


# Relays answer `rate-limited:` without a reset time (NIP-01 has none)
TABLE.append(ContractTarget("nostr-relay", "contract_nostr", crash_points=NOSTR_CRASH_POINTS,
                            rate_limit_reset_stated=False))


# --------------------------------------------------------------------------- Threads (the Threads fake)

THREADS_CREATE = "POST /v1.0/{user}/threads"
THREADS_PUBLISH = "POST /v1.0/{user}/threads_publish"


class ThreadsContractAccount:
    """A user of the Threads fake (tests/threads_fake): its own fault hooks (503, a cut connection, Meta's code 4
    with Retry-After, a lost publish answer); the INVALID refusal is the fake's own words for a container with more
    than five links, sent back for the next post. A new long-lived token is the fix for a revoked one."""

    def __init__(self, fake) -> None:
        self.fake = fake
        self.credential = fake.add_user(unique("contract"))
        self.user_id = fake.tokens[self.credential].user_id
        self.since = time.time()
        self.refusal = ""

    def config_section(self, credential_env: str) -> str:
        return f'type = "threads"\naccess_token = {{ env = "{credential_env}" }}\ngraph_url = "{self.fake.url}"\n'

    def posts(self) -> list[RemotePost]:
        import re

        return [RemotePost(post["id"], post["text"], tuple(filter(None, [post.get("link_attachment_url"),
                                                                         *re.findall(r"https?://\S+", post["text"])])),
                           1 if post.get("media_url") else 0) for post in self.fake.posts(self.user_id)]

    def post_attempts(self) -> list[float]:
        """Each container made: one per attempt to post (a publish follows only a container made)."""
        return [at for at, line in self.fake.seen if at >= self.since and line == f"POST /v1.0/{self.user_id}/threads"]

    def revoke(self) -> None:
        self.fake.revoke(self.credential)

    def restore(self) -> str:
        self.credential = self.fake.issue(self.user_id, "long")
        return self.credential

    def invalid_message(self) -> str:
        return self.refusal

    def fail_next_post(self, fault: str) -> None:
        if fault == INVALID:
            links = " ".join(f"https://example.org/{n}" for n in range(7))
            refused = httpx.post(f"{self.fake.url}/v1.0/{self.user_id}/threads", timeout=30,
                                 data={"media_type": "TEXT", "text": links, "access_token": self.credential})
            assert refused.status_code == 400, refused.text
            self.refusal = refused.json()["error"]["message"]
            self.fake.inject(THREADS_CREATE, ("answer", 400, refused.json()))
            return
        hooks = {TRANSIENT: (THREADS_CREATE, 503), CONNECTION_RESET: (THREADS_CREATE, "drop"),
                 RATE_LIMITED: (THREADS_CREATE, "rate"), ANSWER_LOST: (THREADS_PUBLISH, "lost")}
        self.fake.inject(*hooks[fault])


class ThreadsContractServer:
    def __init__(self, fake) -> None:
        self.fake = fake

    def new_account(self) -> ThreadsContractAccount:
        return ThreadsContractAccount(self.fake)

    def faults_pending(self) -> int:
        return len(self.fake.faults)

    def reset(self) -> None:
        self.fake.clear_faults()


# Nothing is uploaded either: Meta fetches an image itself, from its public URL
TABLE.append(ContractTarget("threads-fake", "contract_threads", crash_points=NOSTR_CRASH_POINTS))
