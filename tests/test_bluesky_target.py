"""The Bluesky target against a real PDS on loopback (tests/pds_fixture.py): no mocks of the server.

Run with -s to see the measured numbers (posts per second, logins per 100 posts across restarts).
"""

from __future__ import annotations

import base64
import json
import os
import socket
import stat
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx
import pytest
import regex

from bridge.config import Config, parse_config, resolve_secret
from bridge.delivery import Deliverer
from bridge.errors import AuthError, PermanentPublishError, RateLimited, TransientPublishError
from bridge.ids import new_tid
from bridge.model import Entry
from bridge.platforms.bluesky import target as bluesky
from bridge.platforms.bluesky.target import BlueskyTarget
from bridge.state import State
from bridge.wiring import make_target
from tests.bluesky_helpers import (
    POST,
    ImageServer,
    byte_range,
    delivery,
    get_blob,
    get_record,
    jpeg,
    list_records,
    media_of,
)
from tests.feedserver import png_bytes
from tests.pds_fixture import Account, PdsServer

ACCOUNT = "bsky"
PASSWORD_ENV = "BRIDGE_TEST_BSKY_APP_PASSWORD"
CREATE_RECORD = "com.atproto.repo.createRecord"
UPLOAD_BLOB = "com.atproto.repo.uploadBlob"
REFRESH_SESSION = "com.atproto.server.refreshSession"
THUMB_LIMIT = 1_000_000


# --------------------------------------------------------------------------- wiring


def config_for(pds: PdsServer, acct: Account, monkeypatch: pytest.MonkeyPatch, *, password: str | None = None,
               feeds: list | None = None, bridge: dict | None = None) -> Config:
    monkeypatch.setenv(PASSWORD_ENV, password if password is not None else acct.app_password)
    return parse_config({
        "accounts": {ACCOUNT: {"type": "bluesky", "handle": acct.handle, "service": pds.url,
                               "app_password": {"env": PASSWORD_ENV}}},
        "feeds": feeds or [],
        "bridge": bridge or {},
    })


@pytest.fixture
def acct(pds: PdsServer) -> Account:
    return pds.create_account("bridge")


@pytest.fixture
def state(tmp_path):
    with State.open(tmp_path / "state.sqlite3") as opened:
        yield opened


@pytest.fixture
def images():
    with ImageServer() as server:
        yield server


def target_for(config: Config, state: State, **kwargs) -> BlueskyTarget:
    """As the daemon builds it (make_target), or directly when a test needs a clock."""
    if "clock" in kwargs:
        return BlueskyTarget(ACCOUNT, config.accounts[ACCOUNT], resolve_secret(config, ACCOUNT), state, **kwargs)
    return make_target(config, state, ACCOUNT, **kwargs)


def now_iso() -> str:
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def simple_payload(text: str, langs=("en",), embed: dict | None = None) -> dict:
    record = {"$type": POST, "text": text, "facets": [], "langs": list(langs), "createdAt": now_iso()}
    if embed is not None:
        record["embed"] = embed
    return {"record": record}


def card(uri: str, thumb: dict | None = None) -> dict:
    external = {"uri": uri, "title": "Ein Titel", "description": "Eine Beschreibung"}
    if thumb is not None:
        external["thumb"] = thumb
    return {"$type": "app.bsky.embed.external", "external": external}


def describe(media, url: str) -> dict:
    return {"source_url": url, "size": len(media.data), "width": media.width, "height": media.height,
            "mime_type": media.mime_type}


def fake_jwt(exp: int) -> str:
    def part(data: dict) -> str:
        return base64.urlsafe_b64encode(json.dumps(data).encode()).decode().rstrip("=")

    return f"{part({'alg': 'ES256K', 'typ': 'at+jwt'})}.{part({'scope': 'com.atproto.appPass', 'exp': exp})}.c2ln"


# --------------------------------------------------------------------------- the post itself


def test_post_with_facets_langs_and_card_thumb_reads_back_exactly(pds, acct, state, images, monkeypatch, recwarn):
    long_uri = "https://blog.example.org/2024/05/über-brücken-und-flüsse-eine-sehr-lange-adresse?utm=x&id=42"
    shown = "blog.example.org/2024/05/über-brü…"
    text = f"Über Brücken 🌉 — Grüße aus Köln 👩🏽‍💻🇩🇪\n\n{shown}\n\n#Brücken #Reisen"
    tags = ["Brücken", "Reisen"]
    link_start, link_end = byte_range(text, shown)
    facets = [{"index": {"byteStart": link_start, "byteEnd": link_end},
               "features": [{"$type": "app.bsky.richtext.facet#link", "uri": long_uri}]}]
    for tag in tags:
        start, end = byte_range(text, "#" + tag)
        facets.append({"index": {"byteStart": start, "byteEnd": end},
                       "features": [{"$type": "app.bsky.richtext.facet#tag", "tag": tag}]})
    picture = jpeg(800, 420)
    url = images.add("/cover.jpg", picture)
    payload = {"record": {"$type": POST, "text": text, "facets": facets, "langs": ["de"], "createdAt": now_iso(),
                          "embed": card(long_uri, describe(media_of(picture), url))}}
    stored = json.dumps(payload, sort_keys=True)

    target = target_for(config_for(pds, acct, monkeypatch), state, media_fetcher=images.fetch)
    row = delivery(ACCOUNT)
    published = target.publish(row, payload)

    assert json.dumps(payload, sort_keys=True) == stored  # the stored payload is left alone for retries
    assert published.remote_id == f"at://{acct.did}/{POST}/{row.rkey}"
    assert published.url == f"https://bsky.app/profile/{acct.handle}/post/{row.rkey}"
    assert [request.path for request in images.requests] == ["/cover.jpg"]
    value = get_record(pds.url, published.remote_id)["value"]
    assert value["text"] == text
    assert value["langs"] == ["de"]
    assert value["facets"] == facets
    # independently of how the payload was built: the byte ranges cover exactly the link text and the tags
    data = text.encode("utf-8")
    link, *tag_facets = value["facets"]
    assert data[link["index"]["byteStart"]:link["index"]["byteEnd"]].decode() == shown
    assert link["features"][0]["uri"] == long_uri
    for facet, tag in zip(tag_facets, tags):
        assert data[facet["index"]["byteStart"]:facet["index"]["byteEnd"]].decode() == "#" + tag
        assert facet["features"] == [{"$type": "app.bsky.richtext.facet#tag", "tag": tag}]
    external = value["embed"]["external"]
    assert value["embed"]["$type"] == "app.bsky.embed.external"
    assert (external["uri"], external["title"], external["description"]) == (long_uri, "Ein Titel", "Eine Beschreibung")
    thumb = external["thumb"]
    assert thumb["$type"] == "blob" and thumb["mimeType"] == "image/jpeg" and thumb["size"] == len(picture)
    blob = get_blob(pds.url, acct.did, thumb["ref"]["$link"])
    assert blob.status_code == 200 and blob.content == picture and len(blob.content) <= THUMB_LIMIT
    assert not [w for w in recwarn if issubclass(w.category, DeprecationWarning) and "httpx" in w.filename]


def test_rendered_post_goes_out_as_rendered(pds, acct, state, images, monkeypatch):
    """The renderer's payload (bridge.render) and the production thumbnail fetcher, end to end."""
    from bridge.linkpreview import LOOPBACK, fetch_thumbnail, make_thumbnail
    from bridge.platforms.bluesky.payload import bluesky_payload
    from bridge.render import render_post

    link = "https://blog.example.org/2024/05/ein-ausführlicher-bericht-über-die-reise-nach-süden"
    # the writer's template puts the link in the text too: a shortened URL with a link facet
    config = config_for(pds, acct, monkeypatch, feeds=[
        {"name": "blog", "url": "https://blog.example.org/feed", "accounts": [ACCOUNT], "language": "de",
         "template": "{title}\n\n{summary}\n\n{url}\n\n{hashtags}"}])
    entry = Entry(key="post-1", link=link, title="Die Reise nach Süden 🚂",
                  summary_html="<p>Zwölf Tage, drei Länder und ein Zug, der nie pünktlich war. 🇩🇪🇦🇹🇮🇹</p>",
                  categories=["Reisen", "Eisenbahn"], language="de")
    settings = config.post_settings(config.feed("blog"), ACCOUNT)
    url = images.add("/og.jpg", jpeg(1200, 630))
    post = render_post(entry, settings)
    payload = bluesky_payload(post, settings, thumbnail=make_thumbnail(jpeg(1200, 630), source_url=url),
                              created_at=datetime.now(timezone.utc))
    with httpx.Client() as http:
        target = target_for(config, state,
                            media_fetcher=lambda u: fetch_thumbnail(u, client=http, allow_private=LOOPBACK))
        published = target.publish(delivery(ACCOUNT), payload)
    value = get_record(pds.url, published.remote_id)["value"]
    record = payload["record"]
    assert value["text"] == record["text"] and value["langs"] == record["langs"]
    assert value["facets"] == record["facets"]
    data = value["text"].encode("utf-8")
    kinds = set()
    for facet in value["facets"]:
        piece = data[facet["index"]["byteStart"]:facet["index"]["byteEnd"]].decode("utf-8")
        feature = facet["features"][0]
        kinds.add(feature["$type"])
        if feature["$type"].endswith("#tag"):
            assert piece == "#" + feature["tag"]
        else:
            shown = piece.removesuffix("…").split("://")[-1]
            assert feature["uri"].split("://", 1)[1].startswith(shown)
    assert kinds == {"app.bsky.richtext.facet#link", "app.bsky.richtext.facet#tag"}
    assert value["embed"]["external"]["uri"] == link
    assert value["embed"]["external"]["thumb"]["$type"] == "blob"


def test_default_link_post_cards_the_article_and_links_the_permalink_mark(pds, acct, state, monkeypatch):
    """Bluesky's default template: no URL in the text, the card goes to the linked article, and the writer's
    permalink is the "★" at the end (a link facet on one grapheme), as the PDS stores it."""
    from bridge.platforms.bluesky.payload import bluesky_payload
    from bridge.render import render_post

    permalink = "https://blog.example.org/linked/2024/05/zug"
    article = "https://news.example.net/2024/05/ein-zug-der-nie-pünktlich-war"
    config = config_for(pds, acct, monkeypatch, feeds=[
        {"name": "blog", "url": "https://blog.example.org/feed", "accounts": [ACCOUNT], "language": "de"}])
    entry = Entry(key="post-2", link=permalink, title="Der Zug, der nie pünktlich war 🚂", target=article,
                  summary_html='<p>Zwölf Tage: <a href="https://fotos.example.org/1">hier</a>.</p>', language="de")
    settings = config.post_settings(config.feed("blog"), ACCOUNT)
    payload = bluesky_payload(render_post(entry, settings), settings, created_at=datetime.now(timezone.utc))
    published = target_for(config, state).publish(delivery(ACCOUNT), payload)
    value = get_record(pds.url, published.remote_id)["value"]
    assert value["text"] == "Der Zug, der nie pünktlich war 🚂 ★"
    (facet,) = value["facets"]
    data = value["text"].encode("utf-8")
    assert data[facet["index"]["byteStart"]:facet["index"]["byteEnd"]].decode("utf-8") == "★"
    assert facet["features"][0]["uri"] == permalink
    assert value["embed"]["external"]["uri"] == article
    assert value["embed"]["external"]["description"] == "Zwölf Tage: hier."


def test_300_graphemes_of_mixed_emoji_pass_and_301_are_refused_by_the_pds(pds, acct, state, monkeypatch):
    pieces = ["👩‍👩‍👧‍👦", "🇩🇪", "👍🏽", "🏳️‍🌈", "🧑🏿‍🚀", "e\u0301", "ä", "x", " "]
    text = "".join(pieces[i % len(pieces)] for i in range(300))
    assert len(regex.findall(r"\X", text)) == 300  # an independent grapheme count
    assert len(text) > 300 and len(text.encode("utf-8")) < 3000  # code points differ; bytes are not the limit
    target = target_for(config_for(pds, acct, monkeypatch), state)
    published = target.publish(delivery(ACCOUNT), simple_payload(text))
    assert get_record(pds.url, published.remote_id)["value"]["text"] == text

    longer = text + "🇫🇷"
    assert len(regex.findall(r"\X", longer)) == 301 and len(longer.encode("utf-8")) < 3000
    with pytest.raises(PermanentPublishError, match=r"grapheme too big \(maximum 300, got 301\)"):
        target.publish(delivery(ACCOUNT), simple_payload(longer))
    assert len(list_records(pds.url, acct.did)) == 1


def test_images_embed_with_alt_text_and_aspect_ratio(pds, acct, state, images, monkeypatch):
    first, second = jpeg(400, 300), jpeg(300, 500)
    embed = {"$type": "app.bsky.embed.images", "images": [
        {"image": describe(media_of(first), images.add("/a.jpg", first)), "alt": "Ein Bahnhof"},
        {"image": describe(media_of(second), images.add("/b.jpg", second)), "alt": "",
         "aspectRatio": {"width": 3, "height": 5}},
        {"image": {"source_url": images.base_url + "/missing.jpg", "size": 1, "width": 1, "height": 1,
                   "mime_type": "image/jpeg"}, "alt": "gone"},
    ]}
    target = target_for(config_for(pds, acct, monkeypatch), state, media_fetcher=images.fetch)
    published = target.publish(delivery(ACCOUNT), simple_payload("Bilder", ["de"], embed))
    value = get_record(pds.url, published.remote_id)["value"]
    got = value["embed"]["images"]
    assert [image["alt"] for image in got] == ["Ein Bahnhof", ""]  # the missing one is left out
    assert got[0]["aspectRatio"] == {"width": 400, "height": 300}
    assert got[1]["aspectRatio"] == {"width": 3, "height": 5}
    assert get_blob(pds.url, acct.did, got[1]["image"]["ref"]["$link"]).content == second


def test_a_photo_post_goes_out_as_an_images_embed_with_alt_text_and_the_link_in_the_text(
        pds, acct, state, images, monkeypatch):
    """A Tumblr-style photo post ("Photo" title, pictures in its HTML) through the composer under the default
    images = "auto": an app.bsky.embed.images with each <img alt> (a picture over Bluesky's 1,000,000 bytes
    recompressed by the production fetcher), no card (one embed), the permalink a link facet, no "Photo"."""
    from bridge.compose import Composer

    link = "https://comics.example.org/post/666841746512150528"
    big = jpeg(2400, 1600, noise=True)
    assert len(big) > THUMB_LIMIT
    small = jpeg(640, 480)
    html = (f'<img src="{images.add("/big.jpg", big)}" alt="A cat asleep on a keyboard"/><br/>'
            f'<img src="{images.add("/small.jpg", small)}" alt="The same cat, awake"/>'
            f'<img src="{images.add("/icon.png", png_bytes(16, 16), "image/png")}" width="16" height="16" alt="icon"/>')
    config = config_for(pds, acct, monkeypatch, feeds=[
        {"name": "comics", "url": "https://comics.example.org/rss", "accounts": [ACCOUNT]}],
        bridge={"allow_private_addresses": True})
    entry = Entry(key="666841746512150528", link=link, title="Photo", summary_html=html, categories=["comics"])
    composer = Composer(config, state, fetch_previews=False)
    payload = composer.compose(entry, config.post_settings(config.feed("comics"), ACCOUNT), "bluesky")
    target = target_for(config, state, media_fetcher=composer.fetch_image)
    published = target.publish(delivery(ACCOUNT), payload)
    composer.close()
    value = get_record(pds.url, published.remote_id)["value"]
    embed = value["embed"]
    assert embed["$type"] == "app.bsky.embed.images" and "external" not in embed
    assert [image["alt"] for image in embed["images"]] == ["A cat asleep on a keyboard", "The same cat, awake"]
    sizes = [len(get_blob(pds.url, acct.did, image["image"]["ref"]["$link"]).content) for image in embed["images"]]
    assert sizes[0] <= THUMB_LIMIT and sizes[1] == len(small)
    assert embed["images"][1]["aspectRatio"] == {"width": 640, "height": 480}
    assert "Photo" not in value["text"]
    links = [facet["features"][0]["uri"] for facet in value["facets"]
             if facet["features"][0]["$type"] == "app.bsky.richtext.facet#link"]
    assert links == [link]


def test_card_image_that_cannot_be_fetched_leaves_the_card(pds, acct, state, images, monkeypatch):
    thumb = {"source_url": images.base_url + "/404.jpg", "size": 10, "width": 1, "height": 1, "mime_type": "image/jpeg"}
    target = target_for(config_for(pds, acct, monkeypatch), state, media_fetcher=images.fetch)
    mark = pds.mark()
    published = target.publish(delivery(ACCOUNT), simple_payload("Karte", ["de"], card("https://example.com/a", thumb)))
    external = get_record(pds.url, published.remote_id)["value"]["embed"]["external"]
    assert external["uri"] == "https://example.com/a" and "thumb" not in external
    assert pds.count(UPLOAD_BLOB, since=mark) == 0


# --------------------------------------------------------------------------- too big


def big_jpeg() -> bytes:
    data = jpeg(1200, 1000, noise=True, quality=95)
    assert THUMB_LIMIT < len(data) < 5_000_000
    return data


def test_thumb_over_the_limit_is_left_out_before_upload(pds, acct, state, monkeypatch):
    data = big_jpeg()
    target = target_for(config_for(pds, acct, monkeypatch), state, media_fetcher=lambda url: media_of(data, url))
    thumb = {"source_url": "http://127.0.0.1:9/big.jpg", "size": len(data), "width": 1200, "height": 1000,
             "mime_type": "image/jpeg"}
    mark = pds.mark()
    published = target.publish(delivery(ACCOUNT), simple_payload("Groß", ["de"], card("https://example.com/b", thumb)))
    external = get_record(pds.url, published.remote_id)["value"]["embed"]["external"]
    assert external["uri"] == "https://example.com/b" and "thumb" not in external
    assert pds.count(UPLOAD_BLOB, since=mark) == 0 and pds.count(CREATE_RECORD, since=mark) == 1


def test_thumb_refused_by_the_pds_posts_again_without_it(pds, acct, state, monkeypatch):
    """Without our own size check, the PDS refuses the record ("blob too big"): the post goes out without it."""
    monkeypatch.setattr(bluesky, "THUMB_MAX_BYTES", 10_000_000)
    data = big_jpeg()
    target = target_for(config_for(pds, acct, monkeypatch), state, media_fetcher=lambda url: media_of(data, url))
    thumb = {"source_url": "http://127.0.0.1:9/big.jpg", "size": len(data), "width": 1200, "height": 1000,
             "mime_type": "image/jpeg"}
    mark = pds.mark()
    published = target.publish(delivery(ACCOUNT), simple_payload("Groß", ["de"], card("https://example.com/c", thumb)))
    external = get_record(pds.url, published.remote_id)["value"]["embed"]["external"]
    assert external["uri"] == "https://example.com/c" and "thumb" not in external
    statuses = [r.status for r in pds.wait_idle() if r.id > mark and r.nsid == CREATE_RECORD]
    assert statuses == [400, 200]
    assert pds.count(UPLOAD_BLOB, since=mark) == 1
    assert len(list_records(pds.url, acct.did)) == 1


def test_upload_over_the_servers_blob_limit_413_leaves_the_thumb_out(pds_factory, state, monkeypatch):
    server = pds_factory(blob_upload_limit=50_000)
    account = server.create_account("blobs")
    data = jpeg(600, 400, noise=True, quality=90)
    assert 50_000 < len(data) <= THUMB_LIMIT
    target = target_for(config_for(server, account, monkeypatch), state, media_fetcher=lambda url: media_of(data, url))
    thumb = {"source_url": "http://127.0.0.1:9/mid.jpg", "size": len(data), "width": 600, "height": 400,
             "mime_type": "image/jpeg"}
    published = target.publish(delivery(ACCOUNT), simple_payload("413", ["en"], card("https://example.com/d", thumb)))
    assert "thumb" not in get_record(server.url, published.remote_id)["value"]["embed"]["external"]
    assert [r.status for r in server.wait_idle() if r.nsid == UPLOAD_BLOB] == [413]


# --------------------------------------------------------------------------- sessions


def test_three_restarts_three_posts_one_login(pds, acct, tmp_path, monkeypatch):
    config = config_for(pds, acct, monkeypatch)
    path = tmp_path / "state.sqlite3"
    mark = pds.mark()
    for run in range(3):
        with State.open(path) as state:  # a new process: new State, new target, new SDK client
            target = target_for(config, state)
            target.publish(delivery(ACCOUNT), simple_payload(f"run {run}"))
            assert target.session_source == ("created" if run == 0 else "reused")
            target.close()
    assert pds.create_session_count(since=mark) == 1
    assert pds.count(CREATE_RECORD, since=mark) == 3
    assert len(list_records(pds.url, acct.did)) == 3
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600  # the session string is a secret
    with State.open(path) as state:
        assert state.load_session(ACCOUNT).split(":::")[1] == acct.did


def test_nothing_touches_the_network_before_the_first_call(pds, acct, state, monkeypatch):
    mark = pds.mark()
    target = target_for(config_for(pds, acct, monkeypatch), state)
    assert target.render_limits() is None
    with pytest.raises(PermanentPublishError, match="cannot be edited"):
        target.edit(delivery(ACCOUNT), simple_payload("x"))
    target.close()
    assert pds.requests(since=mark) == []


def test_the_sdk_refreshes_an_old_access_token_and_the_new_session_is_kept(pds, acct, tmp_path, monkeypatch):
    config = config_for(pds, acct, monkeypatch)
    path = tmp_path / "state.sqlite3"
    with State.open(path) as state:
        target_for(config, state).publish(delivery(ACCOUNT), simple_payload("first"))
        first_session = state.load_session(ACCOUNT)
    mark = pds.mark()
    three_hours_later = lambda: time.time() + 3 * 3600  # noqa: E731 -- the access token (2 h) looks expired
    with State.open(path) as state:
        target = target_for(config, state, clock=three_hours_later)
        target.publish(delivery(ACCOUNT), simple_payload("later"))
        refreshed = state.load_session(ACCOUNT)
    assert refreshed != first_session and refreshed.split(":::")[3] != first_session.split(":::")[3]
    assert pds.count(REFRESH_SESSION, since=mark) >= 1
    with State.open(path) as state:  # the rotated session is the one the next start uses
        target_for(config, state).publish(delivery(ACCOUNT), simple_payload("next start"))
    assert pds.create_session_count(since=mark) == 0
    assert len(list_records(pds.url, acct.did)) == 3


def test_revoked_refresh_token_falls_back_to_one_password_login(pds, acct, tmp_path, monkeypatch):
    config = config_for(pds, acct, monkeypatch)
    path = tmp_path / "state.sqlite3"
    with State.open(path) as state:
        target_for(config, state).publish(delivery(ACCOUNT), simple_payload("before"))
        refresh_jwt = state.load_session(ACCOUNT).split(":::")[3]
    revoked = httpx.post(f"{pds.url}/xrpc/com.atproto.server.deleteSession",
                         headers={"Authorization": f"Bearer {refresh_jwt}"})
    assert revoked.status_code == 200
    mark = pds.mark()
    with State.open(path) as state:  # hours later: the access token has expired too, a refresh is due
        target = target_for(config, state, clock=lambda: time.time() + 3 * 3600)
        target.publish(delivery(ACCOUNT), simple_payload("after"))
        assert target.session_source == "created"
        assert state.load_session(ACCOUNT).split(":::")[3] != refresh_jwt
    refreshes = [r.status for r in pds.wait_idle() if r.id > mark and r.nsid == REFRESH_SESSION]
    assert refreshes[0] == 400  # "Token has been revoked"
    assert pds.create_session_count(since=mark) == 1
    assert len(list_records(pds.url, acct.did)) == 2


def test_unreadable_or_foreign_stored_session_means_one_password_login(pds, acct, state, monkeypatch):
    config = config_for(pds, acct, monkeypatch)
    other = pds.create_account("other")
    other_session = httpx.post(f"{pds.url}/xrpc/com.atproto.server.createSession",
                               json={"identifier": other.handle, "password": other.app_password}).json()
    foreign = ":::".join([other.handle, other.did, other_session["accessJwt"], other_session["refreshJwt"], pds.url])
    for stored in ("garbage", f"{acct.handle}:::{acct.did}:::a.b.c:::d.e.f:::{pds.url}", foreign):
        state.save_session(ACCOUNT, stored, time.time())
        mark = pds.mark()
        published = target_for(config, state).publish(delivery(ACCOUNT), simple_payload("again"))
        assert published.remote_id.startswith(f"at://{acct.did}/")
        assert pds.create_session_count(since=mark) == 1
    assert len(list_records(pds.url, other.did)) == 0
    assert len(list_records(pds.url, acct.did)) == 3


def test_expired_access_token_in_the_store_is_refreshed_not_replaced(pds, acct, state, monkeypatch):
    """A stored session whose access token has expired (fake exp in the past): a refresh, no login."""
    config = config_for(pds, acct, monkeypatch)
    target_for(config, state).publish(delivery(ACCOUNT), simple_payload("one"))
    handle, did, _access, refresh, endpoint = state.load_session(ACCOUNT).split(":::")
    state.save_session(ACCOUNT, ":::".join([handle, did, fake_jwt(int(time.time()) - 60), refresh, endpoint]), 0)
    mark = pds.mark()
    target = target_for(config, state)
    target.publish(delivery(ACCOUNT), simple_payload("two"))
    assert target.session_source == "reused"
    assert pds.create_session_count(since=mark) == 0 and pds.count(REFRESH_SESSION, since=mark) == 1


# --------------------------------------------------------------------------- errors


def test_wrong_app_password_is_an_auth_error_with_the_fix(pds, acct, state, monkeypatch):
    bad = config_for(pds, acct, monkeypatch, password="aaaa-bbbb-cccc-dddd")
    target = target_for(bad, state)
    with pytest.raises(AuthError) as info:
        target.publish(delivery(ACCOUNT), simple_payload("never"))
    text = str(info.value)
    assert "Settings > Privacy and security > App passwords" in text
    assert f"accounts.{ACCOUNT}.app_password" in text and f"$CREDENTIALS_DIRECTORY/{ACCOUNT}" in text
    assert "aaaa-bbbb-cccc-dddd" not in text
    assert list_records(pds.url, acct.did) == [] and state.load_session(ACCOUNT) is None

    good = config_for(pds, acct, monkeypatch)
    mark = pds.mark()
    target_for(good, state).publish(delivery(ACCOUNT), simple_payload("now"))
    assert len(list_records(pds.url, acct.did)) == 1
    assert pds.create_session_count(since=mark) == 1


def test_pds_down_is_transient_and_the_post_goes_out_once_after(pds, acct, state, monkeypatch):
    config = config_for(pds, acct, monkeypatch)
    target = target_for(config, state)
    target.publish(delivery(ACCOUNT), simple_payload("before the outage"))
    row = delivery(ACCOUNT)
    with pds.stopped():
        with pytest.raises(TransientPublishError, match="unreachable"):
            target.publish(row, simple_payload("during the outage"))
        with pytest.raises(TransientPublishError):
            target.find_existing(row)
        state.save_session(ACCOUNT, None, time.time())
        with pytest.raises(TransientPublishError):  # a login that cannot reach the server is not an AuthError
            target_for(config, state).publish(delivery(ACCOUNT), simple_payload("fresh target"))
    row.attempts = 1  # what the engine does next: ask, then post
    assert target.find_existing(row) is None
    target.publish(row, simple_payload("during the outage"))
    assert sorted(r["value"]["text"] for r in list_records(pds.url, acct.did)) == [
        "before the outage", "during the outage"]


def test_unknown_outcome_is_found_and_not_posted_twice(pds, acct, tmp_path, monkeypatch):
    config = config_for(pds, acct, monkeypatch)
    with State.open(tmp_path / "state.sqlite3") as state:
        target = target_for(config, state)
        row = delivery(ACCOUNT)
        published = target.publish(row, simple_payload("said once"))
        # the answer was lost: the row is still 'sending'
        assert target.find_existing(delivery(ACCOUNT, row.rkey, state="sending")) == published
        assert target.find_existing(delivery(ACCOUNT)) is None
        # even a second publish with the same rkey (PDS: 500) finds the first post instead of failing
        mark = pds.mark()
        assert target.publish(row, simple_payload("said once")) == published
        assert [r.status for r in pds.wait_idle() if r.id > mark and r.nsid == CREATE_RECORD] == [500]
    assert [r["value"]["text"] for r in list_records(pds.url, acct.did)] == ["said once"]


def test_engine_recovers_a_row_left_in_sending(pds, acct, tmp_path, monkeypatch):
    """The delivery engine with this target: a crash after the post, before marking it posted."""
    config = config_for(pds, acct, monkeypatch)
    with State.open(tmp_path / "state.sqlite3") as state:
        entry_id = state.add_entry("blog", Entry(key="e1", link="https://example.com/e1"), "new", "h", [], time.time())
        row_id = state.add_delivery(entry_id, ACCOUNT, idempotency_key="k", rkey=new_tid(), now=time.time(),
                                    payload=simple_payload("crash test"))
        row = state.get_delivery(row_id)
        target = target_for(config, state)
        target.publish(row, row.payload)
        state.mark_sending(row_id, time.time())  # and then the process died
        deliverer = Deliverer(config, state, target_factory=lambda name: target_for(config, state),
                              payload_builder=lambda row, target: pytest.fail("the payload was stored"))
        report = deliverer.deliver_due()
        deliverer.close()
        done = state.get_delivery(row_id)
        assert done.state == "posted" and done.remote_id == f"at://{acct.did}/{POST}/{row.rkey}"
        assert report.posted == 1
    assert len(list_records(pds.url, acct.did)) == 1


def test_exhausted_login_limit_is_rate_limited_until_reset(pds_ratelimited, state, monkeypatch):
    server = pds_ratelimited
    account = server.create_account("limited")

    def wrong_login(_: int) -> int:
        return httpx.post(f"{server.url}/xrpc/com.atproto.server.createSession",
                          json={"identifier": account.handle, "password": "wrong"}, timeout=30).status_code

    with ThreadPoolExecutor(max_workers=8) as pool:  # createSession: 30 per 5 minutes per identifier
        assert set(pool.map(wrong_login, range(30))) == {401}
    target = target_for(config_for(server, account, monkeypatch), state)
    before = time.time()
    with pytest.raises(RateLimited) as info:
        target.publish(delivery(ACCOUNT), simple_payload("too soon"))
    retry_at = info.value.retry_at.timestamp()
    assert before < retry_at <= before + 300 + 5
    assert "30;w=300" in str(info.value)
    assert list_records(server.url, account.did) == []


def test_diagnose_reports_handle_did_pds_session_and_rate_limit(pds_ratelimited, tmp_path, monkeypatch):
    server = pds_ratelimited
    account = server.create_account("doctor")
    config = config_for(server, account, monkeypatch)
    path = tmp_path / "state.sqlite3"
    with State.open(path) as state:
        first = target_for(config, state).diagnose()
    with State.open(path) as state:
        mark = server.mark()
        second = target_for(config, state).diagnose()
        assert server.create_session_count(since=mark) == 0
    for report, session in ((first, "created"), (second, "reused")):
        assert report["handle"] == account.handle and report["did"] == account.did
        assert report["pds"] in (server.url, server.public_url) and report["session"] == session
        limit = report["rate_limit"]
        assert set(limit) == {"limit", "remaining", "reset", "policy"}
        assert limit["limit"] > 0 and 0 <= limit["remaining"] <= limit["limit"] and limit["reset"] > time.time() - 1
        assert limit["policy"].startswith(f"{limit['limit']};w=")


def test_diagnose_errors(pds, acct, state, monkeypatch):
    assert target_for(config_for(pds, acct, monkeypatch), state).diagnose()["rate_limit"] is None
    # a working stored session is reused whatever the password says; without one, the password must work
    assert target_for(config_for(pds, acct, monkeypatch, password="wrong"), state).diagnose()["session"] == "reused"
    state.save_session(ACCOUNT, None, 0)
    with pytest.raises(AuthError, match="App passwords"):
        target_for(config_for(pds, acct, monkeypatch, password="wrong-wron-wron-wrong"), state).diagnose()
    nobody = Account(handle="nobody-000000.test", did="did:plc:none", password="", app_password="", email="")
    state.save_session(ACCOUNT, None, 0)
    with pytest.raises(AuthError, match="does not resolve"):
        target_for(config_for(pds, nobody, monkeypatch, password="x"), state).diagnose()


class StubServer:
    """A loopback server answering every request with one status and XRPC error body: for what a PDS cannot be
    made to say (503, 404 from something that is not a PDS)."""

    def __init__(self, status: int, error: str = "InternalServerError") -> None:
        body = json.dumps({"error": error, "message": f"stub {status}"}).encode()

        class Handler(BaseHTTPRequestHandler):
            def _answer(self) -> None:
                self.rfile.read(int(self.headers.get("Content-Length") or 0))
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            do_GET = do_POST = _answer

            def log_message(self, *args) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


def stub_config(url: str, monkeypatch) -> Config:
    monkeypatch.setenv(PASSWORD_ENV, "aaaa-bbbb-cccc-dddd")
    return parse_config({"accounts": {ACCOUNT: {"type": "bluesky", "handle": "someone.test", "service": url,
                                                "app_password": {"env": PASSWORD_ENV}}}})


@pytest.mark.parametrize(("status", "error", "expected", "words"), [
    (503, "InternalServerError", TransientPublishError, "HTTP 503"),
    (502, "InternalServerError", TransientPublishError, "HTTP 502"),
    (404, "XRPCNotSupported", AuthError, "service ="),
])
def test_server_errors_at_login(state, monkeypatch, status, error, expected, words):
    stub = StubServer(status, error)
    try:
        with pytest.raises(expected, match=words) as info:
            target_for(stub_config(stub.url, monkeypatch), state).publish(delivery(ACCOUNT), simple_payload("x"))
        assert type(info.value) is expected
    finally:
        stub.close()


def test_a_server_that_does_not_answer_times_out_as_transient(state, monkeypatch):
    monkeypatch.setattr(bluesky, "READ_TIMEOUT", 0.5)
    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen(8)  # connections are accepted by the kernel; nothing ever answers
    try:
        url = f"http://127.0.0.1:{silent.getsockname()[1]}"
        started = time.monotonic()
        with pytest.raises(TransientPublishError, match="did not answer in time"):
            target_for(stub_config(url, monkeypatch), state).publish(delivery(ACCOUNT), simple_payload("x"))
        assert time.monotonic() - started < 10
    finally:
        silent.close()


# --------------------------------------------------------------------------- numbers


def test_measure_posts_per_second_and_logins_per_100_posts(pds, tmp_path, monkeypatch):
    account = pds.create_account("measure")
    config = config_for(pds, account, monkeypatch)
    with State.open(tmp_path / "one.sqlite3") as state:
        target = target_for(config, state)
        target.publish(delivery(ACCOUNT), simple_payload("warm-up"))
        started = time.perf_counter()
        for i in range(100):
            target.publish(delivery(ACCOUNT), simple_payload(f"post {i} 🚀", ["en"]))
        rate = 100 / (time.perf_counter() - started)
        target.close()

    restarts = pds.create_account("restarts")
    config = config_for(pds, restarts, monkeypatch)
    path = tmp_path / "restarts.sqlite3"
    mark = pds.mark()
    for run in range(10):  # ten "processes", ten posts each
        with State.open(path) as state:
            target = target_for(config, state)
            for i in range(10):
                target.publish(delivery(ACCOUNT), simple_payload(f"run {run} post {i}"))
            target.close()
    logins = pds.create_session_count(since=mark)
    print(f"\n[bluesky] {rate:.1f} posts/s against the local PDS (100 publishes, no thumbs); "
          f"{logins} createSession per 100 posts across 10 restarts")
    assert len(list_records(pds.url, restarts.did)) == 100
    assert logins == 1
    assert rate > 5
