"""The capability table of servers that speak Mastodon's API (bridge/platforms/mastodon/servers.py).

identify() is tried on the version strings each server's own source writes (the file is named beside
each string); the table is checked for what a reader relies on: every cell cited, and a cell nobody could
verify holding the conservative value.
"""

from __future__ import annotations

import re

import pytest

from bridge.platforms.mastodon.servers import CONSERVATIVE, NOT_VERIFIED, PROFILES, identify

# (version string, software, the software's own version); each string as the cited source builds it
REAL_VERSIONS = [
    # mastodon/mastodon lib/mastodon/version.rb: major.minor.patch[-prerelease][+metadata]
    ("4.3.0", "mastodon", "4.3.0"),
    ("4.4.0-beta.1", "mastodon", "4.4.0-beta.1"),
    ("4.7.3", "mastodon", "4.7.3"),  # the recordings in Mastodon.py 2.3.3's sdist
    # glitch-soc/mastodon config/mastodon.yml: metadata "glitch" (+ MASTODON_VERSION_METADATA)
    ("4.7.0-alpha.2+glitch", "glitch-soc", "4.7.0-alpha.2+glitch"),
    ("4.3.2+glitch.example", "glitch-soc", "4.3.2+glitch.example"),
    # hometown-fork/hometown lib/mastodon/version.rb (Hometown on Mastodon 3.4): no marker, Mastodon's rules
    ("3.4.0", "mastodon", "3.4.0"),
    # jointakahe/takahe api/views/instance.py: f"takahe/{__version__}", takahe/__init__.py "0.11.0"
    ("takahe/0.11.0", "takahe", "0.11.0"),
    # superseriousbusiness/gotosocial cmd/gotosocial/main.go version(): Version + "git-" + 7-digit commit
    ("0.20.0+git-57cb4fe", "gotosocial", "0.20.0+git-57cb4fe"),
    ("0.20.0-rc1+git-57cb4fe", "gotosocial", "0.20.0-rc1+git-57cb4fe"),
    # internal/typeutils/internaltofrontend.go toMastodonVersion: "3.5.3+" + version, spaces to "-"
    ("3.5.3+0.20.0+git-57cb4fe", "gotosocial", "0.20.0+git-57cb4fe"),
    ("3.5.3+0.20.0", "gotosocial", "0.20.0"),
    # the form issue 14 quotes for GoToSocial
    ("0.17.0 (compatible; GoToSocial 0.17.0)", "gotosocial", "0.17.0"),
    # akkoma lib/pleroma/web/mastodon_api/views/instance_view.ex: "2.7.2 (compatible; #{named_version})",
    # named_version = "Akkoma " <> mix.exs version
    ("2.7.2 (compatible; Akkoma 3.13.2)", "akkoma", "3.13.2"),
    ("2.7.2 (compatible; Akkoma 3.16.0)", "akkoma", "3.16.0"),
    # pleroma-social/pleroma lib/pleroma/web/api_spec/operations/instance_operation.ex (its own example)
    ("2.7.2 (compatible; Pleroma 2.0.50-536-g25eec6d7-develop)", "pleroma", "2.0.50-536-g25eec6d7-develop"),
    # friendica/friendica src/Module/Api/Mastodon/InstanceV2.php: '2.8.0 (compatible; Friendica ' . App::VERSION
    ("2.8.0 (compatible; Friendica 2024.09-rc)", "friendica", "2024.09-rc"),
    # transfem-org/Sharkey packages/backend/src/server/api/mastodon/endpoints/meta.ts
    ("3.0.0 (compatible; Sharkey 2023.11.2)", "sharkey", "2023.11.2"),
    # kaido2ki/Iceshrimp.NET .../Mastodon/Schemas/InstanceInfoV2Response.cs: "4.2.1 (compatible; Iceshrimp.NET/...)"
    ("4.2.1 (compatible; Iceshrimp.NET/2024.1-beta4.security2)", "iceshrimp.net", "2024.1-beta4.security2"),
]


@pytest.mark.parametrize("version,software,own_version", REAL_VERSIONS)
def test_identify_real_version_strings(version, software, own_version):
    profile, found = identify(version)
    assert (profile.software, found) == (software, own_version)
    assert profile is PROFILES[software]


@pytest.mark.parametrize("version", [
    None, "", "   ", "garbage",
    "0.20.0",  # GoToSocial built without VCS data: could be anything; assume the least
    "3.0.0 (compatible; Firefish 1.0.5)",  # software with no row
    "takahe",
])
def test_unknown_software_gets_the_conservative_profile(version):
    assert identify(version) == (CONSERVATIVE, None)


def test_conservative_assumes_the_least():
    assert CONSERVATIVE.honours_idempotency_key is False
    assert CONSERVATIVE.counting == "codepoints" and CONSERVATIVE.urls_in_full is True
    assert CONSERVATIVE.validation_statuses == {400, 422}
    assert CONSERVATIVE.own_statuses_scopes == ("read",)


CELLS = ("honours_idempotency_key", "counting", "urls_in_full", "validation_statuses", "own_statuses_scopes", "version")
CITATION = re.compile(r"[\w.-]+/[\w.-]+ \S+\.\w+")  # "owner/repo path/to/file.ext"


@pytest.mark.parametrize("key", sorted(PROFILES))
def test_every_cell_is_cited(key):
    profile = PROFILES[key]
    assert profile.software == key
    wanted = set(CELLS) | ({"idempotency_window"} if profile.honours_idempotency_key else set())
    assert set(profile.sources) == wanted
    for cell, source in profile.sources.items():
        assert source == NOT_VERIFIED or CITATION.fullmatch(source), (cell, source)


@pytest.mark.parametrize("key", sorted(PROFILES))
def test_a_cell_nobody_verified_holds_the_conservative_value(key):
    profile = PROFILES[key]
    for cell, source in profile.sources.items():
        if source == NOT_VERIFIED and cell != "version":
            assert getattr(profile, cell) == getattr(CONSERVATIVE, cell), (key, cell)


def test_counting_values_are_known():
    for profile in PROFILES.values():
        assert profile.counting in ("graphemes", "codepoints", "utf16")
        assert profile.idempotency_window >= 3600 or not profile.honours_idempotency_key


def test_bridge_recognises_every_profile_of_the_mastodon_fake():
    """The fake's profiles (tests/mastodon_fake/profiles.py) say the version their server says: bridge's table
    must know each of them, or tests against the fake would exercise the conservative profile instead."""
    from tests.mastodon_fake.profiles import PROFILES as FAKE_PROFILES

    for name, fake in FAKE_PROFILES.items():
        assert identify(fake.version)[0] is PROFILES[name], (name, fake.version)
