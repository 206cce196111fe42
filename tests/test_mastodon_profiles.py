"""Servers that speak Mastodon's API without being Mastodon (issue 14), against the fake's server profiles
(tests/mastodon_fake/profiles.py: MastodonFake(profile="takahe"|"gotosocial"|"akkoma"|"mastodon")); loopback only.

Limits read where each server answers; exactly once on a server that ignores Idempotency-Key (looked for
at any age, held as `unknown` when the token may not look, `bridge retry` asking first -- issue 13 defect 4);
posts counted the server's way, and re-rendered once, strictly, when a server still refuses one as too long;
`bridge login` asking each server for its read scopes; `bridge doctor` passing on Takahē.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from bridge.cli import cli
from bridge.compose import Composer
from bridge.config import load_config
from bridge.delivery import Deliverer
from bridge.doctor import check_accounts
from bridge.errors import TooLong
from bridge.model import Entry
from bridge.platforms.mastodon.limits import MastodonLimits
from bridge.platforms.mastodon.payload import mastodon_payload
from bridge.platforms.mastodon.servers import identify, profile_key
from bridge.platforms.mastodon.target import IDEMPOTENCY_WINDOW
from bridge.render import render_post
from bridge.state import State
from bridge.status import collect_status, render_status_text
from tests.mastodon_fake import MastodonFake
from tests.mastodon_fake.length import profile_length
from tests.mastodon_fake.profiles import PROFILES as FAKE_PROFILES
from tests.render_corpus import settings
from tests.test_mastodon_target import (
    ACCOUNT,
    GENEROUS,
    TOKEN_ENV,
    WITH_READ,
    WRITE_ONLY,
    Clock,
    creates,
    engine,
    new_target,
    payload,
    queue,
)

ROOT = Path(__file__).resolve().parent.parent
PROFILE_NAMES = ["mastodon", "takahe", "gotosocial", "akkoma"]
# Takahē's verify_credentials wants the top-level "read" (api/views/accounts.py); Mastodon's read:accounts.
READ_FOR = {"mastodon": ["read:accounts", "read:statuses"], "takahe": ["read"],
            "gotosocial": ["read:accounts", "read:statuses"], "akkoma": ["read:accounts", "read:statuses"]}


@pytest.fixture
def state(tmp_path):
    with State.open(tmp_path / "state.sqlite3") as opened:
        yield opened


def started(profile: str, **options) -> MastodonFake:
    """A fake answering like `profile`; started by `with`."""
    return MastodonFake(profile=profile, rate_limits=GENEROUS, **options)


def write_config(tmp_path: Path, fake: MastodonFake, extra: str = "") -> Path:
    """A config file on disk (for the CLI): one Mastodon account on the fake, the test's state file; `extra`
    adds TOML lines to the account's table."""
    path = tmp_path / "config.toml"
    path.write_text(f'[bridge]\nstate = "{tmp_path / "state.sqlite3"}"\n\n[accounts.{ACCOUNT}]\ntype = "mastodon"\n'
                    f'instance = "{fake.url}"\naccess_token = {{ env = "{TOKEN_ENV}" }}\nposts_per_hour = 1000000\n'
                    f"posts_per_day = 10000000\n{extra}\n")
    return path


def run_cli(config_path: Path, *args: str):
    result = CliRunner().invoke(cli, ["--config", str(config_path), *args])
    assert result.exception is None or isinstance(result.exception, SystemExit), result.output
    return result


# --------------------------------------------------------------------------- 1, 2: limits and the profile


@pytest.mark.parametrize("profile", PROFILE_NAMES)
def test_limits_are_read_from_every_server_without_a_trailing_slash(state, monkeypatch, tmp_path, profile):
    with started(profile, max_characters=300) as fake:
        config = load_config(write_config(tmp_path, fake))
        monkeypatch.setenv(TOKEN_ENV, fake.add_account("alice", WRITE_ONLY))
        target = new_target(config, state)
        limits = target.render_limits()
        chosen, software_version = identify(FAKE_PROFILES[profile].version)
        assert limits["max_characters"] == 300  # not Mastodon's default 500
        assert (limits["profile"], limits["software"]) == (profile_key(chosen), chosen.software)
        assert limits["software_version"] == software_version and limits["version"] == FAKE_PROFILES[profile].version
        assert (limits["counting"], limits["urls_in_full"]) == (chosen.counting, chosen.urls_in_full)
        assert state.account(ACCOUNT)["limits"] == limits  # kept with the limits
        assert all(not entry["path"].endswith("/") for entry in fake.requests("instance"))


def test_mastodon_py_alone_cannot_read_takahes_limits(state, monkeypatch, tmp_path):
    """The defect reproduced: Mastodon.py asks /api/v2/instance/ (trailing slash), which Takahē answers with 404."""
    from mastodon import MastodonNotFoundError

    with started("takahe", max_characters=300) as fake:
        monkeypatch.setenv(TOKEN_ENV, fake.add_account("alice", WRITE_ONLY))
        target = new_target(load_config(write_config(tmp_path, fake)), state)
        with pytest.raises(MastodonNotFoundError):
            target.api.instance_v2()
        assert target.render_limits()["max_characters"] == 300


# --------------------------------------------------------------------------- 4: posts the server accepts

NEAR_LIMIT = [
    # Words among the emoji: a paragraph of emoji alone is no teaser (the post would be its title and link).
    ("zwj", "Family 👨‍👩‍👧‍👦 and coder 👩🏽‍💻 emoji", "Family 👨‍👩‍👧‍👦 coder 👩🏽‍💻 friends 🧑🏿‍🤝‍🧑🏻 " * 40),
    ("flags", "Flags 🇩🇪🇫🇷🇯🇵 and waving hands 👋🏽", "Flags 🇩🇪 🇫🇷 🏳️‍🌈 🏴‍☠️ and hands 👋🏿 " * 40),
    ("cjk", "日本語のタイトル：橋の話", "橋は川を渡るためのものです。" * 60),
    ("long-url", "A long link", "word " * 400),
]
LONG_URL = "https://blog.example.com/" + "/".join(["a-rather-long-path-segment"] * 5) + "?utm_source=feed&x=1"


def near_limit_entry(kind: str, title: str, body: str) -> Entry:
    link = LONG_URL if kind == "long-url" else f"https://blog.example.com/posts/{kind}"
    return Entry(key=kind, link=link, title=title, content_html=f"<p>{body}</p>", categories=["Unicode"])


@pytest.mark.parametrize("profile", PROFILE_NAMES)
def test_near_limit_entries_are_accepted_first_time_on_every_profile(state, monkeypatch, tmp_path, profile):
    with started(profile, max_characters=300) as fake:
        monkeypatch.setenv(TOKEN_ENV, fake.add_account("alice", WRITE_ONLY))
        target = new_target(load_config(write_config(tmp_path, fake)), state)
        limits = MastodonLimits.from_dict(target.render_limits())
        rule = FAKE_PROFILES[profile]
        for number, (kind, title, body) in enumerate(NEAR_LIMIT):
            entry = near_limit_entry(kind, title, body)
            body = mastodon_payload(render_post(entry, settings()), settings(), limits)
            length = profile_length(body["status"], body["spoiler_text"], counting=rule.counting,
                                    urls_in_full=rule.urls_in_full, counts_spoiler=rule.counts_spoiler,
                                    strips_blank=rule.strips_blank)
            assert length <= 300, (kind, length)
            if (limits.counting, limits.urls_in_full) == (rule.counting, rule.urls_in_full):
                assert length >= 300 - 40, (kind, length)  # filled, not timidly short
            target.publish(queue(state, number, link=entry.link), body)  # no 400/422
        assert len(fake.statuses("alice")) == len(NEAR_LIMIT)


def test_takahe_refuses_a_post_counted_mastodons_way(state, monkeypatch, tmp_path):
    """The defect reproduced: graphemes and 23 per URL make posts Takahē refuses (400 "Status is too long")."""
    with started("takahe", max_characters=300) as fake:
        monkeypatch.setenv(TOKEN_ENV, fake.add_account("alice", WRITE_ONLY))
        target = new_target(load_config(write_config(tmp_path, fake)), state)
        entry = near_limit_entry(*NEAR_LIMIT[0])
        body = mastodon_payload(render_post(entry, settings()), settings(), MastodonLimits(max_characters=300))
        with pytest.raises(TooLong, match="HTTP 400.*Status is too long") as refused:
            target.publish(queue(state, 1), body)
        assert refused.value.not_posted and fake.statuses("alice") == []


def composing_engine(config, state, clock) -> Deliverer:
    composer = Composer(config, state, fetch_previews=False)
    return Deliverer(config, state, clock=clock, target_factory=lambda name: new_target(config, state, clock=clock),
                     payload_builder=composer.payload)


@pytest.mark.parametrize("profile", PROFILE_NAMES)
def test_a_post_refused_as_too_long_is_rendered_again_from_fresh_limits_strictly_and_sent(state, monkeypatch, tmp_path,
                                                                                        profile):
    """The cached limit (500) is stale: the server now allows 300 and refuses the post; bridge re-reads the limits,
    renders once more counting the strictest way, and that post goes out."""
    with started(profile, max_characters=500) as fake:
        monkeypatch.setenv(TOKEN_ENV, fake.add_account("alice", WRITE_ONLY + READ_FOR[profile]))
        config = load_config(write_config(tmp_path, fake))
        clock = Clock()
        new_target(config, state, clock=clock).render_limits()  # cached: 500
        fake.set_limits(max_characters=300)
        entry = near_limit_entry(*NEAR_LIMIT[1])
        state.ensure_feed("blog", "https://blog.example.com/feed")
        entry_id = state.add_entry("blog", entry, "new", "h", [], clock.now)
        row_id = state.add_delivery(entry_id, ACCOUNT, idempotency_key="key-1", rkey=None, now=clock.now)
        deliverer = composing_engine(config, state, clock)
        report = deliverer.deliver_due()
        deliverer.close()
        [status] = fake.statuses("alice")
        done = state.get_delivery(row_id)
        assert report.posted == 1 and done.state == "posted" and done.remote_id == status["id"]
        refused = FAKE_PROFILES[profile].too_long_error[0]
        assert [e["status"] for e in creates(fake)] == [refused, 200]  # refused once, then the strict render
        assert len(done.payload["status"]) <= 300 - 10 and done.payload["status"] == status["text"]
        assert state.account(ACCOUNT)["limits"]["max_characters"] == 300  # read anew


# --------------------------------------------------------------------------- 3: exactly once without the key


def crashed_after_remote_post(fake, state, config, clock, link: str):
    """The status was made, then the process died before recording it: the row is left in `sending`."""
    row = queue(state, 1, link=link, payload=payload(f"Crash {link}"), now=clock.now)
    state.mark_sending(row.id, clock.now)
    new_target(config, state, clock=clock).publish(row, row.payload)
    return row


# The second link is one Mastodon's linkifier leaves as text (an IP address): found in the text, not an href.
@pytest.mark.parametrize("link", ["https://blog.example.com/posts/1", "http://127.0.0.1:8080/posts/1"])
def test_takahe_crash_after_remote_post_is_found_at_once_not_posted_again(state, monkeypatch, tmp_path, link):
    """Within the hour bridge used to trust the Idempotency-Key, which Takahē ignores: a second status."""
    with started("takahe") as fake:
        monkeypatch.setenv(TOKEN_ENV, fake.add_account("alice", WRITE_ONLY + READ_FOR["takahe"]))
        config = load_config(write_config(tmp_path, fake))
        clock = Clock()
        row = crashed_after_remote_post(fake, state, config, clock, link)
        clock.now += 60  # well inside the key's hour
        deliverer = engine(config, state, clock)
        assert deliverer.deliver_due().posted == 1
        deliverer.close()
        [status] = fake.statuses("alice")
        assert state.get_delivery(row.id).remote_id == status["id"] and len(creates(fake)) == 1
        assert fake.requests("account_statuses")  # it looked


def test_takahe_write_only_token_holds_the_post_then_status_doctor_and_retry_force(state, monkeypatch, tmp_path):
    with started("takahe") as fake:
        monkeypatch.setenv(TOKEN_ENV, fake.add_account("alice", WRITE_ONLY))
        config_path = write_config(tmp_path, fake)
        config = load_config(config_path)
        clock = Clock()
        # the process died after marking the row, before its request reached the server: nothing was made,
        # and nobody can tell that from here
        row = queue(state, 1, payload=payload("Held https://blog.example.com/posts/1"), now=clock.now)
        state.mark_sending(row.id, clock.now)
        deliverer = engine(config, state, clock)
        assert deliverer.deliver_due().accounts[0].unknown == 1
        held = state.get_delivery(row.id)
        assert held.state == "unknown" and "does not honour the Idempotency-Key" in held.last_error
        assert creates(fake) == [] and fake.statuses("alice") == []  # never posted blindly
        text = render_status_text(collect_status(config, state))
        assert "OUTCOME UNKNOWN: 1 post(s) held" in text and "scopes write:statuses write:media read" in text
        assert "bridge retry --force --account masto" in text
        assert "server: takahe 0.11.0 (profile takahe), max 500 characters counted in codepoints, URLs in full" in text
        [doctor_says] = [c for c in check_accounts(config) if c.name.endswith("held posts")]
        assert not doctor_says.ok and "1 post(s) wait with an unknown outcome" in doctor_says.detail
        assert "bridge retry --force --account masto" in doctor_says.fix
        # `bridge retry` looks first: still cannot, still held
        assert "1 failed or held post(s) queued again" in run_cli(config_path, "retry").output
        clock.now += 60  # the CLI queued it on the wall clock
        assert deliverer.deliver_due().accounts[0].unknown == 1
        assert state.get_delivery(row.id).state == "unknown" and fake.statuses("alice") == []
        assert [e["status"] for e in creates(fake)] == [400]  # only doctor's blank-status probe
        # the writer looked at the account: not there. --force sends it, once.
        assert "sent without a look first" in run_cli(config_path, "retry", "--force", "--account", ACCOUNT).output
        clock.now += 60
        assert deliverer.deliver_due().posted == 1
        deliverer.close()
        assert len(fake.statuses("alice")) == 1 and state.get_delivery(row.id).state == "posted"


@pytest.mark.parametrize("profile", ["mastodon", "takahe"])
def test_retry_of_a_failed_post_whose_answer_was_lost_asks_first_exactly_one_status(state, monkeypatch, tmp_path,
                                                                                   profile):
    """Issue 13 defect 4: lost answers until the post failed, then `bridge retry` (attempts back to 0) used to
    post again without looking -- a second status once the key's hour had passed (at once on Takahē)."""
    with started(profile) as fake:
        monkeypatch.setenv(TOKEN_ENV, fake.add_account("alice", WRITE_ONLY + READ_FOR[profile]))
        config_path = write_config(tmp_path, fake, "max_attempts = 1")
        config = load_config(config_path)
        clock = Clock()
        row = queue(state, 1, payload=payload("Lost https://blog.example.com/posts/1"), now=clock.now)
        fake.inject("status_create", "lost")
        deliverer = engine(config, state, clock)
        assert deliverer.deliver_due().failed == 1
        assert state.get_delivery(row.id).state == "failed" and len(fake.statuses("alice")) == 1
        clock.now += IDEMPOTENCY_WINDOW + 600  # the writer runs `bridge retry` later that day
        fake.advance(IDEMPOTENCY_WINDOW + 600)
        assert "1 failed or held post(s) queued again" in run_cli(config_path, "retry").output
        assert deliverer.deliver_due().posted == 1
        deliverer.close()
        [status] = fake.statuses("alice")
        done = state.get_delivery(row.id)
        assert done.state == "posted" and done.remote_id == status["id"] and len(creates(fake)) == 1


def test_a_post_refused_twice_fails_with_the_servers_message_and_is_retried_without_a_look(state, monkeypatch,
                                                                                            tmp_path):
    """A refusal settles the outcome: the retry posts without holding, even with a token that may not look."""
    with started("takahe", max_characters=30) as fake:
        monkeypatch.setenv(TOKEN_ENV, fake.add_account("alice", WRITE_ONLY))
        config_path = write_config(tmp_path, fake)
        config = load_config(config_path)
        clock = Clock()
        row = queue(state, 1, payload=payload("Far too long for thirty https://blog.example.com/posts/1"), now=clock.now)
        rendered = []
        deliverer = Deliverer(config, state, clock=clock,
                              target_factory=lambda name: new_target(config, state, clock=clock),
                              payload_builder=lambda row, target, strict=False: rendered.append(strict) or row.payload)
        assert deliverer.deliver_due().failed == 1
        failed = state.get_delivery(row.id)
        assert rendered == [True] and [e["status"] for e in creates(fake)] == [400, 400]
        assert "HTTP 400): Status is too long (also after rendering it again" in failed.last_error
        assert failed.state == "failed" and failed.first_sent_at is None
        fake.set_limits(max_characters=500)
        run_cli(config_path, "retry")
        clock.now += 60
        assert deliverer.deliver_due().posted == 1
        deliverer.close()
        assert len(fake.statuses("alice")) == 1


# --------------------------------------------------------------------------- login and doctor


@pytest.mark.parametrize("profile, scopes", [("takahe", {"read"}), ("mastodon", {"read:accounts", "read:statuses"})])
def test_login_asks_each_server_for_the_scopes_its_lookup_needs(tmp_path, profile, scopes):
    from tests.test_login import run, token_info

    with MastodonFake(profile=profile, oauth_auto_approve="alice") as fake:
        fake.add_account("alice")
        result, _ = run(fake, "--write-token", str(tmp_path / "token"))
        assert result.exit_code == 0, result.output
        token = (tmp_path / "token").read_text().strip()
        assert token_info(fake, token).scopes == {"write:statuses", "write:media"} | scopes
        assert f"{fake.url} runs {profile}: asking for " in result.stderr
        assert all(not e["path"].endswith("/") for e in fake.requests("instance"))


def doctor(config_path: Path, token: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "bridge", "--config", str(config_path), "doctor"],
                          capture_output=True, text=True, timeout=120, cwd=ROOT,
                          env={"PATH": "/usr/bin:/bin", TOKEN_ENV: token, "NO_PROXY": "*"})


def test_doctor_passes_on_takahe_and_says_what_the_server_and_token_are(tmp_path):
    with started("takahe", max_characters=300) as fake:
        config_path = write_config(tmp_path, fake)
        full = doctor(config_path, fake.add_account("alice", WRITE_ONLY + ["read"]))
        assert full.returncode == 0, full.stdout + full.stderr
        line = next(line for line in full.stdout.splitlines() if line.startswith("ok   account masto"))
        for words in ("account @alice", "software takahe", "software version 0.11.0", "profile takahe",
                      "max 300 characters counted in codepoints, URLs in full",
                      "token may post yes, upload images yes, read its own statuses yes (probed)"):
            assert words in line, line
        assert [e["status"] for e in fake.requests("status_create")] == [400]  # Takahē's "Status is empty"
        assert fake.statuses("alice") == []
        write_only = doctor(config_path, fake.add_token("alice", WRITE_ONLY))
        assert write_only.returncode == 0, write_only.stdout  # a warning, not a failure
        assert "warn account masto (mastodon) token: the token may not read the account's own statuses (scopes read " \
               "on takahe)" in write_only.stdout
        assert f"fix: give account masto a token that may also read its own statuses (scopes write:statuses " \
               f"write:media read: `bridge login mastodon --instance {fake.url}`)" in write_only.stdout


def test_doctor_gives_a_concrete_fix_when_the_server_cannot_be_reached(tmp_path, monkeypatch):
    with started("takahe") as gone:
        url = gone.url
        config = load_config(write_config(tmp_path, gone))
    monkeypatch.setenv(TOKEN_ENV, "some-token")
    [check] = check_accounts(config)
    assert not check.ok and "127.0.0.1 refused the connection on port" in check.detail
    assert check.fix.startswith(f"check the port in {url} (accounts.masto.instance) and that the server is running")
