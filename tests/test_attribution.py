"""Author attribution on Mastodon link cards (Mastodon 4.4+): `bridge doctor` says what the article pages and the
account lack, and `bridge attribution --account NAME` sets the account's side through the API -- against the
Mastodon fake and a local blog on `localhost`."""

from __future__ import annotations

import httpx
import pytest

from tests.feedserver import FeedServer
from tests.mastodon_fake import MastodonFake
from tests.test_doctor_frontdoor import bridge, mastodon_account, write_config
from tests.test_pipeline import posts, rss

PAGE = "<!doctype html><html><head><title>Post</title>{meta}</head><body>words</body></html>"


@pytest.fixture()
def blog_and_fake():
    with FeedServer() as blog, MastodonFake() as fake:
        base = f"http://localhost:{blog.port}"
        blog.route("/feed", rss(posts(2, scheme="http", host=f"localhost:{blog.port}")), content_type="application/rss+xml")
        yield blog, fake, base


def setup(tmp_path, fake, base: str, token: str):
    token_file = tmp_path / "token"
    token_file.write_text(token)
    token_file.chmod(0o600)
    config = write_config(tmp_path, mastodon_account("masto", fake.url, f'{{ file = "{token_file}" }}'),
                          f'[[feeds]]\nname = "blog"\nurl = "{base}/feed"\naccounts = ["masto"]\n')
    config.write_text(config.read_text().replace("[bridge]\n", "[bridge]\nallow_private_addresses = true\n", 1))
    return config


def attribution_domains(fake, token: str) -> list[str]:
    with httpx.Client(trust_env=False) as http:
        answer = http.get(f"{fake.url}/api/v1/accounts/verify_credentials", headers={"Authorization": f"Bearer {token}"})
    return answer.json()["source"]["attribution_domains"]


def attribution_lines(out: str) -> list[str]:
    lines = out.splitlines()
    return [line + " | " + (lines[n + 1].strip() if n + 1 < len(lines) and lines[n + 1].startswith("     fix:") else "")
            for n, line in enumerate(lines) if "(mastodon) attribution" in line]


def test_doctor_says_which_meta_tag_the_site_template_lacks(tmp_path, blog_and_fake):
    blog, fake, base = blog_and_fake
    blog.page("/posts/0/", PAGE.format(meta=""))
    config = setup(tmp_path, fake, base, fake.add_account("writer"))
    result = bridge(config, "doctor")
    [line] = attribution_lines(result.stdout)
    handle = f"@writer@127.0.0.1"
    assert line.startswith(f"warn account masto (mastodon) attribution, feed blog: {base}/posts/0/ does not say who "
                           f"wrote it (no <meta name=\"fediverse:creator\">)"), line
    assert f'fix: add <meta name="fediverse:creator" content="{handle}"> to the <head> of your site\'s article template' in line
    assert result.returncode == 0, result.stdout  # a warning: posting works without it


def test_doctor_then_attribution_command_credit_the_writer(tmp_path, blog_and_fake):
    blog, fake, base = blog_and_fake
    blog.page("/posts/0/", PAGE.format(meta='<meta name="fediverse:creator" content="@writer@127.0.0.1">'))
    full = fake.add_account("writer")
    with httpx.Client(trust_env=False) as http:  # a domain the writer allowed before: kept
        http.patch(f"{fake.url}/api/v1/accounts/update_credentials", headers={"Authorization": f"Bearer {full}"},
                   data={"attribution_domains[]": ["news.example"]}).raise_for_status()
    statuses_only = fake.add_token("writer", ["read", "write:statuses", "write:media"])
    config = setup(tmp_path, fake, base, statuses_only)

    [line] = attribution_lines(bridge(config, "doctor").stdout)
    assert line.startswith("warn account masto (mastodon) attribution: the pages name @writer@127.0.0.1, but the "
                           "account does not allow localhost to credit it"), line
    assert "fix: add localhost in Preferences > Public profile > Verification" in line
    assert "or run `bridge attribution --account masto` (needs a token with write:accounts)" in line

    refused = bridge(config, "attribution", "--account", "masto")
    assert refused.returncode == 1
    assert ("error: the token of account 'masto' may not change the profile (it lacks the scope write:accounts) — "
            "add localhost yourself in Preferences > Public profile > Verification") in refused.stderr
    assert attribution_domains(fake, full) == ["news.example"]

    config = setup(tmp_path, fake, base, full)
    done = bridge(config, "attribution", "--account", "masto")
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "account masto (@writer@127.0.0.1) now allows localhost to credit it"
    assert attribution_domains(fake, full) == ["news.example", "localhost"]
    again = bridge(config, "attribution", "--account", "masto")
    assert again.stdout.strip() == "account masto (@writer@127.0.0.1) already allows localhost to credit it"

    [line] = attribution_lines(bridge(config, "doctor").stdout)
    assert line.startswith(f"ok   account masto (mastodon) attribution, feed blog: {base}/posts/0/ credits "
                           "@writer@127.0.0.1, and the account allows localhost"), line


def test_a_page_naming_someone_else_is_pointed_out(tmp_path, blog_and_fake):
    blog, fake, base = blog_and_fake
    blog.page("/posts/0/", PAGE.format(meta='<meta name="fediverse:creator" content="@ghost@elsewhere.example">'))
    config = setup(tmp_path, fake, base, fake.add_account("writer"))
    [line] = attribution_lines(bridge(config, "doctor").stdout)
    assert f"{base}/posts/0/ names @ghost@elsewhere.example as its writer, not @writer@127.0.0.1" in line


def test_attribution_refuses_an_account_that_is_not_mastodon(tmp_path, blog_and_fake):
    _, fake, base = blog_and_fake
    config = setup(tmp_path, fake, base, fake.add_account("writer"))
    result = bridge(config, "attribution", "--account", "nobody")
    assert result.returncode == 2
    assert "config error: --account: no Mastodon account named 'nobody' — Mastodon accounts in the config: masto" in result.stderr
