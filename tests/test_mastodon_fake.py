"""Behaviour of the fake Mastodon server, driven through Mastodon.py 2.3.3 (and raw HTTP where
Mastodon.py hides the wire). Everything stays on loopback."""

from __future__ import annotations

import dataclasses
import datetime as dt
import os
import re
import time
import urllib.parse

import httpx
import pytest
import requests
from mastodon import (
    Mastodon,
    MastodonAPIError,
    MastodonIllegalArgumentError,
    MastodonInternalServerError,
    MastodonNetworkError,
    MastodonNotFoundError,
    MastodonRatelimitError,
    MastodonServiceUnavailableError,
    MastodonUnauthorizedError,
)

from tests.feedserver import FeedServer
from tests.mastodon_fake import MastodonFake, MastodonFakeProcess, status_length, tiny_png

RESET_FORMAT = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{6}Z")
OOB = "urn:ietf:wg:oauth:2.0:oob"


def loopback_session() -> requests.Session:
    session = requests.Session()
    session.trust_env = False  # no proxies from the environment: loopback only
    return session


def client(fake, token: str, timeout: float = 10) -> Mastodon:
    return Mastodon(access_token=token, api_base_url=fake.url, version_check_mode="none",
                    ratelimit_method="throw", request_timeout=timeout, session=loopback_session())


def status_code(exc: MastodonAPIError) -> int:
    return exc.args[1]


@pytest.fixture
def fake():
    server = MastodonFake()
    server.start()
    yield server
    errors = server.errors
    server.stop()
    assert not errors, errors[0]["exception"]


@pytest.fixture
def alice(fake):
    return client(fake, fake.add_account("alice"))


@pytest.fixture
def http():
    with httpx.Client(timeout=10, trust_env=False) as c:
        yield c


# --- a local site for link cards ----------------------------------------------------------

POST_PAGE = b"""<!doctype html><html lang="en"><head>
        <title>Fallback title</title>
        <meta property="og:title" content="An article &amp; more">
        <meta property="og:description" content="What it is about">
        <meta property="og:image" content="/img/cover.png">
        <meta property="og:url" content="/post?canonical=1">
        <meta property="og:site_name" content="The Blog">
        </head><body>hi</body></html>"""


@pytest.fixture(scope="module")
def site():
    with FeedServer() as server:
        server.page("/post", POST_PAGE)
        server.page("/plain-title", b"<html><head><title>Only a title</title></head></html>", content_type="text/html")
        server.page("/no-title", b"<html><head></head><body>nothing</body></html>", content_type="text/html")
        server.route("/json", b'{"title": "not html"}', content_type="application/json")
        server.page("/gone", b"<html><head><title>Not found</title></head></html>", status=404,
                    content_type="text/html")
        server.image("/img/cover.png", tiny_png())
        yield server


def hits(server: FeedServer) -> list[str]:
    """host:port/path of every request the site got (the Host header says which name the fake fetched)."""
    return [record.headers.get("host", "") + urllib.parse.urlsplit(record.path).path for record in server.requests]


# --- instance --------------------------------------------------------------------------------


def test_instance_v1_v2_with_and_without_slash(http):
    with MastodonFake(max_characters=11000, characters_reserved_per_url=30, max_media_attachments=6,
                      description_limit=1500, version="4.5.1") as fake:
        for path in ("/api/v2/instance", "/api/v2/instance/"):
            data = http.get(fake.url + path).json()
            assert data["version"] == "4.5.1"
            assert data["configuration"]["statuses"] == {
                "max_characters": 11000, "max_media_attachments": 6, "characters_reserved_per_url": 30}
            assert data["configuration"]["media_attachments"]["description_limit"] == 1500
        for path in ("/api/v1/instance", "/api/v1/instance/"):
            response = http.get(fake.url + path)
            assert response.headers["deprecation"] == "@1668384000"
            assert response.json()["configuration"]["statuses"]["max_characters"] == 11000
        assert client(fake, fake.add_account("bob")).instance_v2().configuration.statuses.max_characters == 11000
        fake.set_limits(description_limit=None, max_characters=640)
        data = http.get(fake.url + "/api/v2/instance").json()
        assert "description_limit" not in data["configuration"]["media_attachments"]
        assert data["configuration"]["statuses"]["max_characters"] == 640


# --- statuses ---------------------------------------------------------------------------------


def test_post_get_and_find_in_recent_statuses(fake, alice, http):
    status = alice.status_post("New post: https://blog.example.com/2026/hello #news", visibility="unlisted", language="de")
    assert str(status.id).isdigit() and status.visibility == "unlisted" and status.language == "de"
    assert status.card is None
    assert '<a href="https://blog.example.com/2026/hello"' in status.content
    assert alice.status(status.id).id == status.id
    me = alice.me()
    recent = alice.account_statuses(me.id, limit=5)
    assert [s.id for s in recent] == [status.id]
    raw = http.get(f"{fake.url}/api/v1/statuses/{status.id}", headers={"Authorization": f"Bearer {alice.access_token}"})
    assert isinstance(raw.json()["id"], str)
    assert raw.headers["content-type"] == "application/json; charset=utf-8"
    assert fake.statuses("alice")[0]["text"].startswith("New post")


def test_account_statuses_pagination(fake, alice, http):
    ids = [alice.status_post(f"post {i}").id for i in range(5)]
    me = alice.me()
    page = alice.account_statuses(me.id, limit=2)
    assert [s.id for s in page] == ids[:-3:-1]
    older = alice.account_statuses(me.id, limit=2, max_id=page[-1].id)
    assert [s.id for s in older] == [ids[2], ids[1]]
    raw = http.get(f"{fake.url}/api/v1/accounts/{me.id}/statuses", params={"limit": 2},
                   headers={"Authorization": f"Bearer {alice.access_token}"})
    assert 'rel="next"' in raw.headers["link"] and 'rel="prev"' in raw.headers["link"]


def test_idempotency_key(fake, alice):
    first = alice.status_post("once", idempotency_key="entry-1")
    again = alice.status_post("once, retried", idempotency_key="entry-1")
    assert again.id == first.id and again.content == "<p>once</p>"
    assert len(fake.statuses("alice")) == 1
    # per account
    bob = client(fake, fake.add_account("bob"))
    assert bob.status_post("once", idempotency_key="entry-1").id != first.id
    # remembered one hour (fake clock)
    fake.advance(3599)
    assert alice.status_post("once", idempotency_key="entry-1").id == first.id
    fake.advance(2)
    assert alice.status_post("once", idempotency_key="entry-1").id != first.id


def test_idempotency_key_stored_only_after_success(fake, alice):
    with pytest.raises(MastodonAPIError) as exc:
        alice.status_post("x" * 501, idempotency_key="k")
    assert status_code(exc.value) == 422
    created = alice.status_post("fits", idempotency_key="k")
    assert alice.status_post("fits", idempotency_key="k").id == created.id


def test_idempotency_window_is_configurable():
    with MastodonFake(idempotency_ttl=10) as fake:
        api = client(fake, fake.add_account("alice"))
        first = api.status_post("a", idempotency_key="k")
        fake.advance(11)
        assert api.status_post("a", idempotency_key="k").id != first.id


@pytest.mark.parametrize("limit", [500, 1000, 11000])
def test_length_boundary(limit):
    with MastodonFake(max_characters=limit) as fake:
        api = client(fake, fake.add_account("alice"))
        api.status_post("é" * limit)  # graphemes, not bytes
        with pytest.raises(MastodonAPIError) as exc:
            api.status_post("é" * (limit + 1))
        assert status_code(exc.value) == 422
        assert exc.value.args[3] == f"Validation failed: Text character limit of {limit} exceeded"
        assert len(fake.statuses("alice")) == 1


@pytest.mark.parametrize("reserved", [23, 10, 64])
def test_urls_count_as_characters_reserved_per_url(reserved):
    with MastodonFake(max_characters=500, characters_reserved_per_url=reserved) as fake:
        api = client(fake, fake.add_account("alice"))
        url = "https://blog.example.com/" + "long-slug-" * 30
        fits = "b" * (500 - reserved - 1) + " " + url
        assert status_length(fits, characters_reserved_per_url=reserved) == 500
        api.status_post(fits)
        with pytest.raises(MastodonAPIError) as exc:
            api.status_post("b" + fits)
        assert status_code(exc.value) == 422


def test_what_counts_in_full(alice):
    # a remote mention counts as @user; an IP-host URL and a bare domain count in full
    alice.status_post("x" * 495 + " @bob@social.example.com")  # 495 + len(" @bob") = 500
    ip_url = " http://127.0.0.1:8000/abc"  # 26 characters, no URL discount
    alice.status_post("x" * (500 - len(ip_url)) + ip_url)
    with pytest.raises(MastodonAPIError):
        alice.status_post("x" * (501 - len(ip_url)) + ip_url)
    bare = " blog.example.com/abcdefghijklmnopqrstuvwxyz"  # 44 characters, no URL discount
    alice.status_post("x" * (500 - len(bare)) + bare)
    with pytest.raises(MastodonAPIError):
        alice.status_post("x" * (501 - len(bare)) + bare)


def test_content_warning_counts(alice):
    alice.status_post("t" * 490, spoiler_text="w" * 10)
    with pytest.raises(MastodonAPIError) as exc:
        alice.status_post("t" * 491, spoiler_text="w" * 10)
    assert status_code(exc.value) == 422


def test_content_warning_and_sensitive(fake, alice):
    # Mastodon 4.7.3 (recorded): a CW does not force sensitive
    assert alice.status_post("body", spoiler_text="cw", sensitive=False).sensitive is False
    assert alice.status_post("body", spoiler_text="cw", sensitive=True).sensitive is True
    with MastodonFake(cw_implies_sensitive=True) as old:
        assert client(old, old.add_account("a")).status_post("body", spoiler_text="cw").sensitive is True


def test_invalid_visibility_and_blank_text_are_422(fake, alice, http):
    auth = {"Authorization": f"Bearer {alice.access_token}"}
    response = http.post(fake.url + "/api/v1/statuses", data={"status": "hi", "visibility": "friends"}, headers=auth)
    assert response.status_code == 422 and set(response.json()) == {"error"}
    response = http.post(fake.url + "/api/v1/statuses", json={"status": "hi", "visibility": "direct"}, headers=auth)
    assert response.status_code == 200 and response.json()["visibility"] == "direct"
    with pytest.raises(MastodonAPIError) as exc:
        alice.status_post("   ")
    assert status_code(exc.value) == 422


def test_unknown_language_falls_back(alice):
    assert alice.status_post("hallo", language="de").language == "de"
    assert alice.status_post("hallo", language="xx-nonsense").language == "en"


def test_edit_replaces_everything(fake, alice):
    media = alice.media_post(tiny_png(), mime_type="image/png", description="dot")
    original = alice.status_post("first", spoiler_text="cw", sensitive=True, media_ids=[media], language="fr")
    edited = alice.status_update(original.id, "second")
    assert edited.id == original.id
    assert edited.spoiler_text == "" and edited.media_attachments == [] and edited.sensitive is False
    assert edited.edited_at is not None and edited.language == "fr"
    assert alice.status(original.id).content == "<p>second</p>"
    assert len(alice.status_history(original.id)) == 2
    with pytest.raises(MastodonAPIError) as exc:
        alice.status_update(original.id, "z" * 501)
    assert status_code(exc.value) == 422
    bob = client(fake, fake.add_account("bob"))
    with pytest.raises(MastodonNotFoundError):
        bob.status_update(original.id, "hijack")


def test_delete(fake, alice, http):
    status = alice.status_post("bye")
    deleted = alice.status_delete(status.id)
    assert deleted.text == "bye"  # the source comes back, for "delete and redraft"
    other = alice.status_post("raw")
    raw = http.delete(f"{fake.url}/api/v1/statuses/{other.id}", headers={"Authorization": f"Bearer {alice.access_token}"})
    assert raw.json()["text"] == "raw" and "content" not in raw.json()
    with pytest.raises(MastodonNotFoundError):
        alice.status(status.id)
    with pytest.raises(MastodonNotFoundError):
        alice.status_delete(status.id)
    assert fake.statuses("alice") == []


def test_visibility_of_other_accounts_statuses(fake, alice, http):
    private = alice.status_post("secret", visibility="private")
    public = alice.status_post("hello")
    bob = client(fake, fake.add_account("bob"))
    with pytest.raises(MastodonNotFoundError):
        bob.status(private.id)
    assert bob.status(public.id).id == public.id
    assert http.get(f"{fake.url}/api/v1/statuses/{public.id}").status_code == 200


# --- media ------------------------------------------------------------------------------------


def test_image_upload_is_ready_at_once(fake, alice):
    media = alice.media_post(tiny_png(), mime_type="image/png", description="a dot")
    assert media.type == "image" and media.url and media.description == "a dot"
    status = alice.status_post("pic", media_ids=[media.id])
    assert status.media_attachments[0].id == media.id
    with pytest.raises(MastodonNotFoundError):  # attached media leave /api/v1/media
        alice.media(media.id)


def test_video_processing_202_206_200(fake, alice, http):
    auth = {"Authorization": f"Bearer {alice.access_token}"}
    upload = http.post(fake.url + "/api/v2/media", headers=auth,
                       files={"file": ("clip.mp4", b"\x00\x00\x00\x18ftypmp42" + b"\x00" * 64, "video/mp4")},
                       data={"description": "a clip"})
    assert upload.status_code == 202 and upload.json()["url"] is None
    media_id = upload.json()["id"]
    with pytest.raises(MastodonAPIError) as exc:  # not processed yet
        alice.status_post("video", media_ids=[media_id])
    assert status_code(exc.value) == 422
    first = http.get(f"{fake.url}/api/v1/media/{media_id}", headers=auth)
    assert first.status_code == 206 and first.json()["url"] is None
    update = http.put(f"{fake.url}/api/v1/media/{media_id}", headers=auth, data={"description": "better"})
    assert update.status_code == 206 and update.json()["description"] == "better"
    second = http.get(f"{fake.url}/api/v1/media/{media_id}", headers=auth)
    assert second.status_code == 200 and second.json()["url"].endswith(".mp4")
    assert alice.status_post("video", media_ids=[media_id]).media_attachments[0].type == "video"
    assert http.get(f"{fake.url}/api/v1/media/{media_id}", headers=auth).status_code == 404


def test_media_processing_by_time():
    with MastodonFake(media_processing_polls=None, media_processing_seconds=30) as fake:
        api = client(fake, fake.add_account("alice"))
        media = api.media_post(b"ID3" + b"\x00" * 64, mime_type="audio/mpeg")
        assert media.url is None
        assert fake.media(str(media.id))["_processed"] is False
        fake.advance(31)
        assert api.media(media.id).url is not None


def test_media_limits(fake, alice):
    with pytest.raises(MastodonAPIError) as exc:
        alice.media_post(tiny_png(), mime_type="image/png", description="d" * 10001)
    assert status_code(exc.value) == 422
    fake.set_limits(description_limit=None)  # not advertised: 1500 enforced
    with pytest.raises(MastodonAPIError):
        alice.media_post(tiny_png(), mime_type="image/png", description="d" * 1501)
    media = alice.media_post(tiny_png(), mime_type="image/png", description="d" * 1500)
    with pytest.raises(MastodonAPIError):
        alice.media_update(media.id, description="e" * 1501)
    assert alice.media_update(media.id, description="short").description == "short"
    with pytest.raises(MastodonAPIError) as exc:
        alice.media_post(b"not an image", mime_type="image/png")
    assert status_code(exc.value) == 422
    five = [alice.media_post(tiny_png(), mime_type="image/png").id for _ in range(5)]
    with pytest.raises(MastodonAPIError):
        alice.status_post("too many", media_ids=five)


# --- link cards -----------------------------------------------------------------------------


def test_card_appears_later_from_opengraph(site):
    with MastodonFake(hosts={"blog.example.com": "127.0.0.1"}) as fake:
        api = client(fake, fake.add_account("alice"))
        url = f"http://blog.example.com:{site.port}/post"
        posted = api.status_post(f"Read this: {url} and http://blog.example.com:{site.port}/plain-title")
        assert posted.card is None
        assert fake.wait_for_cards()
        card = api.status(posted.id).card
        assert card.title == "An article & more" and card.description == "What it is about"
        assert card.url == f"http://blog.example.com:{site.port}/post?canonical=1"
        assert card.provider_name == "The Blog"
        assert card.image.startswith(fake.url + "/system/")
        assert httpx.get(card.image, trust_env=False).content == tiny_png()
        assert hits(site).count(f"blog.example.com:{site.port}/post") >= 1


@pytest.mark.parametrize("path,has_card", [("/plain-title", True), ("/no-title", False), ("/json", False), ("/gone", False)])
def test_card_rules(site, path, has_card):
    with MastodonFake(hosts={"blog.example.com": "127.0.0.1"}) as fake:
        api = client(fake, fake.add_account("alice"))
        posted = api.status_post(f"http://blog.example.com:{site.port}{path}")
        fake.wait_for_cards()
        card = api.status(posted.id).card
        assert (card is not None) == has_card
        if has_card:
            assert card.title == "Only a title" and card.image is None


def test_no_card_with_media_or_unmapped_host(site):
    with MastodonFake(hosts={"blog.example.com": "127.0.0.1"}) as fake:
        api = client(fake, fake.add_account("alice"))
        media = api.media_post(tiny_png(), mime_type="image/png")
        with_media = api.status_post(f"http://blog.example.com:{site.port}/post", media_ids=[media])
        elsewhere = api.status_post(f"http://other.example.com:{site.port}/post")  # not loopback: never fetched
        by_ip = api.status_post(f"http://127.0.0.1:{site.port}/post")  # an IP host is not a link for Mastodon
        fake.wait_for_cards()
        assert api.status(with_media.id).card is None
        assert api.status(elsewhere.id).card is None
        assert api.status(by_ip.id).card is None


# --- rate limits --------------------------------------------------------------------------------


def test_statuses_rate_limit_429_and_headers(fake, alice, http):
    fake.set_limits(statuses=(3, 3600))
    for i in range(3):
        alice.status_post(f"post {i}")
    assert alice.ratelimit_limit == 3 and alice.ratelimit_remaining == 0
    with pytest.raises(MastodonRatelimitError):
        alice.status_post("one too many")
    response = http.post(fake.url + "/api/v1/statuses", data={"status": "again"},
                         headers={"Authorization": f"Bearer {alice.access_token}"})
    assert response.status_code == 429
    assert response.json() == {"error": "Too many requests"}
    assert response.headers["x-ratelimit-limit"] == "3" and response.headers["x-ratelimit-remaining"] == "0"
    reset = response.headers["x-ratelimit-reset"]
    assert RESET_FORMAT.fullmatch(reset)
    reset_at = dt.datetime.strptime(reset, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=dt.timezone.utc).timestamp()
    assert int(reset_at) % 3600 == 0 and 0 < reset_at - fake.clock.now() <= 3600
    assert "retry-after" not in response.headers
    # edits count in the same family; the next window opens at the reset time
    fake.advance(reset_at - fake.clock.now() + 0.5)
    status = alice.status_post("new window")
    alice.status_update(status.id, "edited")
    alice.status_update(status.id, "edited again")
    with pytest.raises(MastodonRatelimitError):
        alice.status_update(status.id, "edited too often")


def test_per_token_media_and_delete_limits(fake, alice, http):
    fake.set_limits(per_token=(5, 300), media=(2, 1800), deletes=(1, 1800))
    auth = {"Authorization": f"Bearer {alice.access_token}"}
    codes = [http.get(fake.url + "/api/v1/accounts/verify_credentials", headers=auth).status_code for _ in range(6)]
    assert codes == [200] * 5 + [429]
    fake.reset_rate_limits()
    alice.media_post(tiny_png(), mime_type="image/png")
    alice.media_post(tiny_png(), mime_type="image/png")
    with pytest.raises(MastodonRatelimitError):
        alice.media_post(tiny_png(), mime_type="image/png")
    fake.reset_rate_limits()
    a, b = alice.status_post("a"), alice.status_post("b")
    fake.reset_rate_limits()
    deleted = http.delete(f"{fake.url}/api/v1/statuses/{a.id}", headers=auth)
    assert deleted.headers["x-ratelimit-limit"] == "1" and deleted.headers["x-ratelimit-remaining"] == "0"
    assert http.delete(f"{fake.url}/api/v1/statuses/{b.id}", headers=auth).status_code == 429


def test_default_limits_in_headers(fake, alice, http):
    auth = {"Authorization": f"Bearer {alice.access_token}"}
    get = http.get(fake.url + "/api/v1/accounts/verify_credentials", headers=auth)
    assert get.headers["x-ratelimit-limit"] == "300" and RESET_FORMAT.fullmatch(get.headers["x-ratelimit-reset"])
    post = http.post(fake.url + "/api/v1/statuses", data={"status": "x"}, headers=auth)
    # the tighter of the per-token throttle (2 of 300 used) and the statuses family (1 of 300)
    assert post.headers["x-ratelimit-limit"] == "300" and post.headers["x-ratelimit-remaining"] == "298"
    media = http.post(fake.url + "/api/v2/media", headers=auth, files={"file": ("a.png", tiny_png(), "image/png")})
    assert media.headers["x-ratelimit-limit"] == "30"
    assert "x-ratelimit-limit" not in http.get(fake.url + "/.well-known/oauth-authorization-server").headers


# --- auth -----------------------------------------------------------------------------------------


def test_revoked_invalid_and_missing_tokens_401(fake, alice, http):
    alice.status_post("works")
    fake.revoke(alice.access_token)
    with pytest.raises(MastodonUnauthorizedError):
        alice.status_post("no longer")
    response = http.get(fake.url + "/api/v1/accounts/verify_credentials", headers={"Authorization": "Bearer nope"})
    assert response.status_code == 401 and response.json() == {"error": "The access token is invalid"}
    assert response.headers["www-authenticate"].startswith('Bearer realm="Doorkeeper", error="invalid_token"')
    assert http.post(fake.url + "/api/v1/statuses", data={"status": "x"}).status_code == 401


def test_scopes_403(fake, http):
    token = fake.add_account("poster", ["write:statuses", "write:media"])
    api = client(fake, token)
    api.status_post("allowed")
    api.media_post(tiny_png(), mime_type="image/png")
    with pytest.raises(MastodonAPIError) as exc:
        api.account_verify_credentials()
    assert status_code(exc.value) == 403
    # a token without read:statuses cannot list statuses either, even public ones
    account_id = fake.account_id("poster")
    response = http.get(f"{fake.url}/api/v1/accounts/{account_id}/statuses", headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 403
    assert http.get(f"{fake.url}/api/v1/accounts/{account_id}/statuses").status_code == 200  # anonymous is fine
    reader = client(fake, fake.add_account("reader", "read"))
    with pytest.raises(MastodonAPIError) as exc:
        reader.status_post("nope")
    assert status_code(exc.value) == 403


# --- faults ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("code,error", [(500, MastodonInternalServerError), (503, MastodonServiceUnavailableError), (502, MastodonAPIError)])
def test_fault_5xx(fake, alice, code, error):
    fake.inject("status_create", code, times=2)
    for _ in range(2):
        with pytest.raises(error):
            alice.status_post("x")
    assert fake.statuses("alice") == []
    assert alice.status_post("x")
    log = fake.requests("status_create")
    assert [(e["fault"], e["status"]) for e in log] == [(str(code), code), (str(code), code), (None, 200)]


def test_fault_429(fake, alice):
    fake.inject("statuses", 429)
    with pytest.raises(MastodonRatelimitError):
        alice.status_post("x")
    assert alice.status_post("x")


def test_fault_drop_does_nothing(fake, alice):
    fake.inject("POST /api/v1/statuses", "drop")
    with pytest.raises(MastodonNetworkError):
        alice.status_post("x", idempotency_key="k")
    assert fake.statuses("alice") == []
    assert fake.requests("status_create")[0]["outcome"] == "dropped"


def test_fault_lost_creates_then_drops(fake, alice):
    fake.inject("/api/v1/statuses", "lost")
    with pytest.raises(MastodonNetworkError):
        alice.status_post("x", idempotency_key="retry-me")
    assert len(fake.statuses("alice")) == 1  # it was created
    retried = alice.status_post("x", idempotency_key="retry-me")  # a safe retry finds it
    assert retried.id == fake.statuses("alice")[0]["id"] and len(fake.statuses("alice")) == 1


def test_fault_slow(fake):
    token = fake.add_account("alice")
    fake.inject("status_create", "slow", seconds=0.3)
    started = time.monotonic()
    client(fake, token).status_post("patient")
    assert time.monotonic() - started >= 0.3
    fake.inject("status_create", "slow", seconds=2)
    with pytest.raises(MastodonNetworkError):
        client(fake, token, timeout=0.5).status_post("impatient")
    deadline = time.monotonic() + 5
    while len(fake.statuses("alice")) < 2 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert len(fake.statuses("alice")) == 2  # the server still did the work


def test_fault_targets_family_and_forever(fake, alice):
    fid = fake.inject("media", 503, times=None)
    for _ in range(3):
        with pytest.raises(MastodonServiceUnavailableError):
            alice.media_post(tiny_png(), mime_type="image/png")
    assert alice.status_post("statuses unaffected")
    assert [f["id"] for f in fake.faults] == [fid]
    fake.clear_faults()
    assert alice.media_post(tiny_png(), mime_type="image/png")


# --- OAuth ----------------------------------------------------------------------------------------


def test_oauth_authorization_code_flow(fake, http):
    fake.add_account("alice")
    scopes = ["write:statuses", "write:media"]
    client_id, client_secret = Mastodon.create_app("bridge", scopes=scopes, api_base_url=fake.url, session=loopback_session())
    api = Mastodon(client_id=client_id, client_secret=client_secret, api_base_url=fake.url, version_check_mode="none",
                   session=loopback_session())
    url = api.auth_request_url(scopes=scopes, allow_http=True)
    assert http.get(url).status_code == 200  # nobody logged in: a login page, no code
    fake.set_oauth_user("alice")
    answer = http.get(url, follow_redirects=True)
    code = re.search(r'value="([^"]+)"', answer.text).group(1)
    assert fake.oauth_codes[-1]["code"] == code
    token = api.log_in(code=code, scopes=scopes, allow_http=True)
    poster = client(fake, token)
    assert poster.status_post("logged in").account.username == "alice"
    with pytest.raises(MastodonIllegalArgumentError, match="invalid_grant"):  # codes are single-use
        api.log_in(code=code, scopes=scopes, allow_http=True)


def test_oauth_redirect_uri_and_errors(fake, http):
    fake.add_account("alice")
    app = http.post(fake.url + "/api/v1/apps", data={"client_name": "bridge", "scopes": "write:statuses",
                                                      "redirect_uris": "http://127.0.0.1:9/callback"}).json()
    fake.set_oauth_user("alice")
    params = {"client_id": app["client_id"], "redirect_uri": "http://127.0.0.1:9/callback", "response_type": "code",
              "scope": "write:statuses", "state": "xyz"}
    answer = http.get(fake.url + "/oauth/authorize", params=params)
    assert answer.status_code == 302
    query = dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(answer.headers["location"]).query))
    assert query["state"] == "xyz"
    assert http.get(fake.url + "/oauth/authorize", params={**params, "scope": "read"}).status_code == 400
    assert http.get(fake.url + "/oauth/authorize", params={**params, "redirect_uri": "http://evil/"}).status_code == 400
    bad = http.post(fake.url + "/oauth/token", data={"grant_type": "authorization_code", "code": query["code"],
                                                     "client_id": app["client_id"], "client_secret": "wrong",
                                                     "redirect_uri": params["redirect_uri"]})
    assert bad.status_code == 401 and bad.json()["error"] == "invalid_client"
    good = http.post(fake.url + "/oauth/token", data={"grant_type": "authorization_code", "code": query["code"],
                                                      "client_id": app["client_id"], "client_secret": app["client_secret"],
                                                      "redirect_uri": params["redirect_uri"]})
    assert good.status_code == 200 and good.json()["scope"] == "write:statuses"
    password = http.post(fake.url + "/oauth/token", data={"grant_type": "password", "username": "alice", "password": "x",
                                                          "client_id": app["client_id"], "client_secret": app["client_secret"]})
    assert password.status_code == 400 and password.json()["error"] == "unsupported_grant_type"


# --- clock, log, process -------------------------------------------------------------------------


def test_fake_clock_drives_dates(fake, alice, http):
    fake.clock.set(dt.datetime(2030, 1, 2, 3, 4, 5, tzinfo=dt.timezone.utc).timestamp())
    status = alice.status_post("in the future")
    assert status.created_at.year == 2030
    response = http.get(fake.url + "/api/v2/instance")
    assert response.headers["date"] == "Wed, 02 Jan 2030 03:04:05 GMT"


def test_request_log(fake, alice):
    alice.status_post("logged", idempotency_key="abc")
    entry = fake.requests("status_create")[-1]
    assert entry["method"] == "POST" and entry["status"] == 200 and entry["account"] == "alice"
    assert entry["headers"]["idempotency-key"] == "abc" and entry["params"]["status"] == "logged"
    fake.clear_log()
    assert fake.request_log == []


def test_subprocess_with_control_api():
    with MastodonFakeProcess(accounts=["alice"], max_characters=600, rate_limits={"statuses": (2, 60)}) as proc:
        token = proc.tokens["alice"]
        api = client(proc, token)
        assert api.instance_v2().configuration.statuses.max_characters == 600
        api.status_post("from another process")
        assert [s["text"] for s in proc.statuses("alice")] == ["from another process"]
        proc.inject("status_create", 503)
        with pytest.raises(MastodonServiceUnavailableError):
            api.status_post("fails once")
        api.status_post("second")
        with pytest.raises(MastodonRatelimitError):
            api.status_post("third")
        proc.advance(61)
        bob_token = proc.add_account("bob")
        client(proc, bob_token).status_post("bob here")
        proc.revoke(bob_token)
        with pytest.raises(MastodonUnauthorizedError):
            client(proc, bob_token).status_post("revoked")
        assert any(e["fault"] == "503" for e in proc.request_log)
        pid = proc.proc.pid
    with pytest.raises(OSError):
        os.kill(pid, 0)  # stop() ended the process


# --- profiles: the fake answering like other servers ------------------------------------------------------

FAMILY = "\U0001F468\u200D\U0001F469\u200D\U0001F467"  # one grapheme, five code points
PROBE_LIMIT = 40


def observe(fake, http) -> dict:
    """What a client sees of the server's profile, probed over HTTP at a limit of PROBE_LIMIT."""
    fake.set_limits(max_characters=PROBE_LIMIT)
    url = fake.url
    auth = {"Authorization": f"Bearer {fake.add_account('prober')}"}

    def post(status: str, key: str | None = None, token_headers: dict = auth, **extra) -> httpx.Response:
        headers = {**token_headers, **({"Idempotency-Key": key} if key else {})}
        return http.post(url + "/api/v1/statuses", data={"status": status, **extra}, headers=headers)

    def outcome(response: httpx.Response) -> tuple[int, str | None]:
        body = response.json()
        return response.status_code, body.get("error") if isinstance(body, dict) else None

    v1 = http.get(url + "/api/v1/instance").json()
    seen: dict = {
        "version": v1["version"],
        "v1_limits": v1["configuration"]["statuses"] if "configuration" in v1 else {"max_toot_chars": v1["max_toot_chars"]},
        "v2": http.get(url + "/api/v2/instance").status_code,
        "slash": [http.get(url + path).status_code for path in ("/api/v1/instance/", "/api/v2/instance/")],
        "empty": outcome(post("")),
        "blank": post("   ").status_code,
        "cw_only": (lambda r: (r.status_code, r.json().get("content")))(post("", spoiler_text="cw")),
        "cw_sensitive": post("body", spoiler_text="cw", sensitive="false").json()["sensitive"],
        "too_long": outcome(post("x" * (PROBE_LIMIT + 1))),
        "spoiler_counts": post("x" * PROBE_LIMIT, spoiler_text="w").status_code,
        "graphemes": post(FAMILY * 10).status_code,  # 10 graphemes, 50 code points
        "url": post("https://blog.example.com/" + "a" * 40).status_code,  # 65 in full, 23 or 25 reserved
    }
    created_json = post("short").json()
    created = created_json["id"]
    seen["entities"] = ("quote_approval" in created_json, "moved" in created_json["account"])  # Mastodon 4.7's or Takahē's
    seen["edit_too_long"] = http.put(f"{url}/api/v1/statuses/{created}", data={"status": "x" * (PROBE_LIMIT + 1)},
                                     headers=auth).status_code
    first = post("once", key="k").json()["id"]
    other = {"Authorization": f"Bearer {fake.add_account('other')}"}
    seen["same_key"] = [post("once", key="k").json()["id"] == first,
                        post("once", key="k", token_headers=other).json()["id"] == first]
    remembered = []
    for age in (3599, 21599, 21601):  # Mastodon keeps a key 1 h, Pleroma/Akkoma 6 h
        fake.clock.set(fake.clock.now() + age)
        remembered.append(post("once", key="k").json()["id"] == first)
        fake.clock.set(fake.clock.now() - age)
    seen["key_remembered"] = remembered
    post("x" * (PROBE_LIMIT + 1), key="refused")
    seen["refusal_replayed"] = post("fits", key="refused").status_code
    account_id = fake.account_id("prober")
    seen["verify"], seen["account_statuses"] = {}, {}
    for scope in ("read", "read:accounts", "read:statuses", "profile"):
        headers = {"Authorization": f"Bearer {fake.add_token('prober', scope)}"}
        seen["verify"][scope] = http.get(url + "/api/v1/accounts/verify_credentials", headers=headers).status_code
        seen["account_statuses"][scope] = http.get(f"{url}/api/v1/accounts/{account_id}/statuses", headers=headers).status_code
    seen["account_statuses"]["anonymous"] = http.get(f"{url}/api/v1/accounts/{account_id}/statuses").status_code
    upload = http.post(url + "/api/v2/media", files={"file": ("dot.png", tiny_png(), "image/png")}, headers=auth).json()
    seen["media_get"] = {scope: http.get(f"{url}/api/v1/media/{upload['id']}", headers={
        "Authorization": f"Bearer {fake.add_token('prober', scope)}"}).status_code for scope in ("read", "write", "write:media")}
    narrow = {"Authorization": f"Bearer {fake.add_token('prober', 'read:statuses')}"}
    seen["forbidden"] = http.get(url + "/api/v1/accounts/verify_credentials", headers=narrow).json()["error"]
    revoked = fake.add_token("prober")
    fake.revoke(revoked)
    refused = post("never", token_headers={"Authorization": f"Bearer {revoked}"})
    seen["revoked"] = (refused.status_code, refused.headers["content-type"].split(";")[0])
    return seen


# Written from each server's source (tests/mastodon_fake/profiles.py cites the files), not read from the table.
EXPECTED = {
    "mastodon": {
        "version": "4.7.3",
        "v1_limits": {"max_characters": 40, "max_media_attachments": 4, "characters_reserved_per_url": 23},
        "v2": 200, "slash": [200, 200],
        "empty": (422, "Validation failed: Text can't be blank"), "blank": 422, "cw_only": (200, "<p>cw</p>"),
        "too_long": (422, "Validation failed: Text character limit of 40 exceeded"),
        "spoiler_counts": 422, "graphemes": 200, "url": 200, "edit_too_long": 422,
        "same_key": [True, False], "key_remembered": [True, False, False], "refusal_replayed": 200,
        "verify": {"read": 200, "read:accounts": 200, "read:statuses": 403, "profile": 200},
        "account_statuses": {"read": 200, "read:accounts": 403, "read:statuses": 200, "profile": 403, "anonymous": 200},
        "media_get": {"read": 403, "write": 200, "write:media": 200},
        "entities": (True, False),
        "cw_sensitive": False,
        "forbidden": "This action is outside the authorized scopes",
        "revoked": (401, "application/json"),
    },
    "takahe": {
        "version": "takahe/0.11.0",
        "v1_limits": {"max_characters": 40, "max_media_attachments": 4, "characters_reserved_per_url": 23},
        "v2": 200, "slash": [404, 404],
        "empty": (400, "Status is empty"), "blank": 200, "cw_only": (400, None),
        "too_long": (400, "Status is too long"),
        "spoiler_counts": 200, "graphemes": 400, "url": 400, "edit_too_long": 200,
        "same_key": [False, False], "key_remembered": [False, False, False], "refusal_replayed": 200,
        "verify": {"read": 200, "read:accounts": 403, "read:statuses": 403, "profile": 403},
        "account_statuses": {"read": 200, "read:accounts": 403, "read:statuses": 200, "profile": 403, "anonymous": 401},
        "media_get": {"read": 200, "write": 403, "write:media": 403},
        "entities": (False, True),
        "cw_sensitive": True,
        "forbidden": "out_of_scope_for_token",
        "revoked": (400, "text/html"),  # api/middleware.py ApiTokenMiddleware: "Invalid Bearer token"
    },
    "gotosocial": {
        "version": "0.20.0+git-57cb4fe",
        "v1_limits": {"max_characters": 40, "max_media_attachments": 4, "characters_reserved_per_url": 25},
        "v2": 200, "slash": [301, 301],
        "empty": (400, "Bad Request: status contains no text, media or poll"), "blank": 200, "cw_only": (200, ""),
        "too_long": (400, "Bad Request: text with spoiler exceed max chars (40)"),
        "spoiler_counts": 400, "graphemes": 400, "url": 400, "edit_too_long": 400,
        "same_key": [False, False], "key_remembered": [False, False, False], "refusal_replayed": 200,
        "verify": {"read": 200, "read:accounts": 200, "read:statuses": 403, "profile": 200},
        "account_statuses": {"read": 200, "read:accounts": 403, "read:statuses": 200, "profile": 403, "anonymous": 401},
        "media_get": {"read": 403, "write": 200, "write:media": 200},
        "entities": (True, False),
        "cw_sensitive": False,
        "forbidden": "Forbidden: token has insufficient scope permission",
        "revoked": (401, "application/json"),  # the fake's Mastodon answer: not read from GoToSocial's source
    },
    "akkoma": {
        "version": "2.7.2 (compatible; Akkoma 3.13.2)",
        "v1_limits": {"max_toot_chars": 40},
        "v2": 404, "slash": [200, 404],
        "empty": (422, "Cannot post an empty status without attachments"), "blank": 422, "cw_only": (200, ""),
        "too_long": (422, "The status is over the character limit"),
        "spoiler_counts": 422, "graphemes": 200, "url": 422, "edit_too_long": 422,
        "same_key": [True, True], "key_remembered": [True, True, False], "refusal_replayed": 422,
        "verify": {"read": 200, "read:accounts": 200, "read:statuses": 403, "profile": 403},
        "account_statuses": {"read": 200, "read:accounts": 403, "read:statuses": 200, "profile": 403, "anonymous": 200},
        "media_get": {"read": 200, "write": 403, "write:media": 403},
        "entities": (True, False),
        "cw_sensitive": False,
        "forbidden": "Insufficient permissions: read:accounts.",
        "revoked": (401, "application/json"),  # the fake's Mastodon answer: not read from Akkoma's source
    },
}


@pytest.mark.parametrize("profile", sorted(EXPECTED))
def test_profile_answers_like_its_server(profile, http):
    with MastodonFake(profile=profile) as fake:
        assert fake.profile == profile
        assert observe(fake, http) == EXPECTED[profile]
        assert not fake.errors


def _mutations(profile) -> list:
    """Each rule of the profile changed to a value a client could tell apart."""
    from tests.mastodon_fake.profiles import FakeProfile

    other = {"404": "ok", "ok": "redirect", "redirect": "404", "graphemes": "codepoints", "codepoints": "graphemes",
             "account": None, "global": "account", None: "global", "mastodon": "takahe", "takahe": "mastodon"}
    changed = []
    for field in dataclasses.fields(FakeProfile):
        value = getattr(profile, field.name)
        if field.name == "name":
            continue
        if field.name in ("idempotency_ttl", "idempotency_replays_errors") and profile.idempotency is None:
            continue  # the key is ignored: no window, nothing replayed
        if field.name == "idempotency_ttl":
            value = value / 2
        elif field.name == "characters_reserved_per_url":
            if profile.v1_max_toot_chars and not profile.has_instance_v2:
                continue  # Akkoma advertises no URL weight and counts URLs in full: nothing to see
            value = value + 7
        elif isinstance(value, bool):
            value = not value
        elif field.name in ("empty_error", "too_long_error"):
            value = (418, value[1])
        elif field.name == "refused_token":
            value = None if value else (400, "Invalid Bearer token")
        elif field.name.endswith("_scopes"):
            value = ("admin:read",)
        elif field.name in ("version", "forbidden_message"):
            value = value + "-planted"
        else:
            value = other[value]
        extra = {"idempotency_ttl": 3600.0} if field.name == "idempotency" and not profile.idempotency_ttl else {}
        changed.append(dataclasses.replace(profile, **{field.name: value}, **extra))
    return changed


@pytest.mark.parametrize("profile", sorted(EXPECTED))
def test_every_profile_rule_is_observed(profile, http, monkeypatch):
    """A planted change to any one rule of a profile makes test_profile_answers_like_its_server fail."""
    from tests.mastodon_fake import profiles

    original = profiles.PROFILES[profile]
    mutants = _mutations(original)
    assert len(mutants) >= 20 if original.idempotency else len(mutants) >= 18
    for mutant in mutants:
        monkeypatch.setitem(profiles.PROFILES, profile, mutant)
        with MastodonFake(profile=profile) as fake:
            assert observe(fake, http) != EXPECTED[profile], mutant


def test_unknown_profile_is_refused():
    with pytest.raises(ValueError, match="unknown profile 'misskey'; known: mastodon, takahe, gotosocial, akkoma"):
        MastodonFake(profile="misskey")


def test_takahe_profile_in_a_subprocess_through_mastodon_py():
    """--profile on the command line; Mastodon.py's trailing-slash instance request finds nothing on Takahē."""
    with MastodonFakeProcess(accounts=["alice"], profile="takahe", max_characters=300) as proc:
        api = client(proc, proc.tokens["alice"])
        with pytest.raises(MastodonNotFoundError):
            api.instance_v2()  # GET /api/v2/instance/
        limits = httpx.get(proc.url + "/api/v2/instance", trust_env=False).json()
        assert limits["version"] == "takahe/0.11.0"
        assert limits["configuration"]["statuses"]["max_characters"] == 300
        first = api.status_post("twice", idempotency_key="k")
        assert api.status_post("twice", idempotency_key="k").id != first.id
        assert len(proc.statuses("alice")) == 2


# --- attribution domains (Mastodon 4.4+: who wrote a linked article) --------------------------


def test_update_credentials_sets_attribution_domains_as_mastodon_normalises_them(fake):
    token = fake.add_account("writer")
    api = client(fake, token)
    assert api.account_verify_credentials()["source"]["attribution_domains"] == []
    account = api.account_update_credentials(
        attribution_domains=["https://blog.example.com", " *.news.example ", "blog.example.com", ""])
    assert account["source"]["attribution_domains"] == ["blog.example.com", "news.example"]
    assert api.account_verify_credentials()["source"]["attribution_domains"] == ["blog.example.com", "news.example"]
    api.account_update_credentials(display_name="Writer")  # a save without the list keeps it
    assert api.account_verify_credentials()["source"]["attribution_domains"] == ["blog.example.com", "news.example"]


def test_update_credentials_needs_write_accounts_and_valid_domains(fake, http):
    url = f"{fake.url}/api/v1/accounts/update_credentials"
    only_statuses = fake.add_account("writer", ["read", "write:statuses"])
    refused = http.patch(url, headers={"Authorization": f"Bearer {only_statuses}"},
                         data={"attribution_domains[]": ["blog.example.com"]})
    assert refused.status_code == 403 and refused.json() == {"error": "This action is outside the authorized scopes"}
    accounts = fake.add_token("writer", ["read", "write:accounts"])
    invalid = http.patch(url, headers={"Authorization": f"Bearer {accounts}"}, data={"attribution_domains[]": ["not a domain"]})
    assert invalid.status_code == 422 and "Attribution domains" in invalid.json()["error"]
    ok = http.patch(url, headers={"Authorization": f"Bearer {accounts}"}, data={"attribution_domains[]": ["blog.example.com"]})
    assert ok.status_code == 200 and ok.json()["source"]["attribution_domains"] == ["blog.example.com"]
