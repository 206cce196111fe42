"""The fake's takahe profile against the real Takahē (tests/takahe_fixture.py): the same requests to both,
compared by status code and by JSON shape with the comparison that checks the mastodon profile against
recorded Mastodon answers (tests/test_mastodon_conformance.py shape_differences).

What the real Takahē sends is the reference: the fake must answer every request with the same status
code, and its JSON must have exactly the real server's keys, value types and nulls (the fake's takahe
profile serves Takahē's entities, tests/mastodon_fake/takahe_entities.py).
"""

from __future__ import annotations

import dataclasses
from typing import Any, Callable

import httpx
import pytest

from tests.mastodon_fake import MastodonFake, tiny_png
from tests.takahe_fixture import TakaheServer
from tests.test_mastodon_conformance import ENTITY, Learned, shape_differences

LIMIT = 300


@dataclasses.dataclass
class Side:
    """One server under the same script: its URL and tokens by scope set."""

    url: str
    tokens: Callable[[list[str]], str]
    revoke: Callable[[str], None]
    answers: list[tuple[str, int, Any]] = dataclasses.field(default_factory=list)

    def call(self, step: str, method: str, path: str, scopes: list[str] | None, **kwargs) -> httpx.Response:
        headers = dict(kwargs.pop("headers", {}))
        if scopes is not None:
            headers["Authorization"] = f"Bearer {self.tokens(scopes)}"
        response = httpx.request(method, self.url + path, headers=headers, timeout=30, trust_env=False, **kwargs)
        try:
            body = response.json()
        except ValueError:
            body = None
        self.answers.append((step, response.status_code, body))
        return response


def script(side: Side) -> None:
    """The requests, each named by the endpoint its answer is an entity of (see ENTITY)."""
    side.call("instance_v2", "GET", "/api/v2/instance", None)
    side.call("instance_v1", "GET", "/api/v1/instance", None)
    side.call("instance_v2_slash", "GET", "/api/v2/instance/", None)
    side.call("instance_v1_slash", "GET", "/api/v1/instance/", None)
    everything = ["read", "write"]
    side.call("verify_credentials", "GET", "/api/v1/accounts/verify_credentials", everything)
    side.call("verify_credentials_read_accounts", "GET", "/api/v1/accounts/verify_credentials", ["read:accounts"])
    side.call("verify_credentials_no_token", "GET", "/api/v1/accounts/verify_credentials", None)
    me = side.call("verify_credentials", "GET", "/api/v1/accounts/verify_credentials", ["read"]).json()["id"]
    made = side.call("status_create", "POST", "/api/v1/statuses", everything,
                     data={"status": "Hello from https://blog.example.com/post #tag", "visibility": "public"}).json()
    side.call("status_create", "POST", "/api/v1/statuses", everything, data={"status": "again"},
              headers={"Idempotency-Key": "same-key"})
    side.call("status_create", "POST", "/api/v1/statuses", everything, data={"status": "again"},
              headers={"Idempotency-Key": "same-key"})
    side.call("status_empty", "POST", "/api/v1/statuses", everything, data={"status": ""})
    side.call("status_too_long", "POST", "/api/v1/statuses", everything, data={"status": "x" * (LIMIT + 1)})
    # at the limit in code points; 23 per URL would make it shorter still
    side.call("status_create", "POST", "/api/v1/statuses", everything,
              data={"status": "y" * (LIMIT - 30) + " https://blog.example.com/" + "a" * 4})
    # the profile's counting rules, tried on the real server: code points, not graphemes (61 families are
    # 305 code points); a URL in full, not at 23 (301 in full, 294 at 23); the content warning not counted
    family = "\U0001F468\u200D\U0001F469\u200D\U0001F467"
    side.call("status_graphemes_fit_codepoints_do_not", "POST", "/api/v1/statuses", everything,
              data={"status": family * 61})
    side.call("status_url_counted_in_full", "POST", "/api/v1/statuses", everything,
              data={"status": "z" * 270 + " https://blog.example.com/abcd"})
    side.call("status_create", "POST", "/api/v1/statuses", everything,
              data={"status": "w" * LIMIT, "spoiler_text": "not counted"})
    side.call("status_create_write_only", "POST", "/api/v1/statuses", ["write:statuses"], data={"status": "narrow"})
    side.call("status_get", "GET", f"/api/v1/statuses/{made['id']}", everything)
    side.call("status_source", "GET", f"/api/v1/statuses/{made['id']}/source", everything)
    side.call("status_edit", "PUT", f"/api/v1/statuses/{made['id']}", everything, data={"status": "Edited"})
    side.call("status_edit", "PUT", f"/api/v1/statuses/{made['id']}", everything, data={"status": "e" * (LIMIT + 5)})
    side.call("account_statuses", "GET", f"/api/v1/accounts/{me}/statuses", everything, params={"limit": 5})
    side.call("account_statuses_read_statuses", "GET", f"/api/v1/accounts/{me}/statuses", ["read:statuses"])
    side.call("account_statuses_no_token", "GET", f"/api/v1/accounts/{me}/statuses", None)
    media = side.call("media_create", "POST", "/api/v2/media", everything,
                      files={"file": ("dot.png", tiny_png(), "image/png")}, data={"description": "A dot"}).json()
    side.call("media_get_write", "GET", f"/api/v1/media/{media['id']}", ["write"])
    # a token the writer revoked, and one the server never made: what bridge must take as "credentials refused"
    revoked = side.tokens(everything)
    side.revoke(revoked)
    side.call("status_create_revoked_token", "POST", "/api/v1/statuses", None, data={"status": "never"},
              headers={"Authorization": f"Bearer {revoked}"})
    side.call("verify_credentials_unknown_token", "GET", "/api/v1/accounts/verify_credentials", None,
              headers={"Authorization": "Bearer not-a-token-of-this-server"})
    side.call("status_delete", "DELETE", f"/api/v1/statuses/{made['id']}", everything)
    side.call("status_get_deleted", "GET", f"/api/v1/statuses/{made['id']}", everything)


def fake_answers(profile: str) -> list[tuple[str, int, Any]]:
    with MastodonFake(profile=profile, max_characters=LIMIT) as fake:
        fake.add_account("shapes")
        mirror = Side(fake.url, lambda scopes: fake.add_token("shapes", scopes), fake.revoke)
        script(mirror)
        assert not fake.errors, fake.errors[0]["exception"]
    return mirror.answers


@pytest.fixture(scope="module")
def answers(takahe: TakaheServer):
    takahe.set_post_length(LIMIT)
    account = takahe.new_identity("shapes")
    real = Side(takahe.url, account.token, lambda token: takahe.admin("revoke_token", token=token))
    script(real)
    return real.answers, fake_answers("takahe")


def differences(real: list, mirror: list) -> list[tuple[str, str, str, str]]:
    learned = Learned()
    for step, code, body in real:  # what Takahē itself varies between answers of one kind
        learned.add("error" if code >= 400 else ENTITY.get(step, step), body)
    found = []
    for (step, code, rec), (_, _, got) in zip(real, mirror):
        family = "error" if code >= 400 else ENTITY.get(step, step)
        found += [(step, *difference) for difference in shape_differences(rec, got, family, learned)]
    return found


def test_the_takahe_profile_answers_with_takahes_status_codes(answers):
    real, mirror = answers
    assert [(step, code) for step, code, _ in mirror] == [(step, code) for step, code, _ in real]


def test_the_takahe_profile_answers_with_takahes_json_shapes(answers):
    real, mirror = answers
    found = differences(real, mirror)
    assert not found, "\n".join(map(str, found))


def test_the_comparison_tells_mastodon_from_takahe(answers):
    """The same script against the mastodon profile differs from Takahē: the check above can fail."""
    real, _ = answers
    mastodon = fake_answers("mastodon")
    codes = {step: code for step, code, _ in mastodon}
    assert codes["instance_v2_slash"] == 200 and codes["status_empty"] == 422 and codes["media_get_write"] == 200
    assert codes["status_create_revoked_token"] == codes["verify_credentials_unknown_token"] == 401
    kinds = {(kind, path) for _, kind, path, _ in differences(real, mastodon)}
    assert ("extra", "quote_approval") in kinds and ("missing", "account.moved") in kinds
