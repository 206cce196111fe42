"""Config loading and validation: every problem names the key and the fix; the example config loads."""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest

from bridge.config import (
    DEFAULT_TEMPLATE,
    AlertSettings,
    BridgeSettings,
    CategoryRule,
    FeedConfig,
    HashtagSettings,
    PostOptions,
    load_config,
    parse_config,
    parse_duration,
    resolve_secret,
)
from bridge.errors import ConfigError
from bridge.platforms import PLATFORMS
from bridge.platforms.bluesky import DEFAULT_TEMPLATES as BLUESKY_TEMPLATES

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = ROOT / "config.example.toml"


def _error(data: dict) -> ConfigError:
    with pytest.raises(ConfigError) as info:
        parse_config(data)
    return info.value


def test_example_config_loads_and_resolves_its_defaults():
    config = load_config(EXAMPLE)
    assert [feed.name for feed in config.feeds] == ["blog"]
    assert set(config.accounts) == {"mastodon-main", "bluesky-main", "nostr-main", "threads-main"}
    threads = config.accounts["threads-main"]
    assert (threads.app_id, threads.server_url) == ("990602627938098", "https://graph.threads.net")
    nostr = config.accounts["nostr-main"]
    assert (nostr.relays[0], nostr.min_relays, nostr.long_form, nostr.edit_on_update) == (
        "wss://relay.damus.io", 1, False, False)
    assert config.bridge.interval == 15 * 60
    assert config.bridge.max_post_age == 7 * 86400
    settings = config.post_settings(config.feed("blog"), "bluesky-main")
    assert settings.template == "{title}\n\n{hashtags}"  # the per-account override wins over the feed's
    assert settings.template_untitled == "{summary}\n\n{hashtags}"
    assert config.post_settings(config.feed("blog"), "mastodon-main").visibility == "public"


def test_bluesky_accounts_default_to_card_aware_templates_and_a_set_template_wins():
    accounts = {
        "m": {"type": "mastodon", "instance": "https://m.example"},
        "b": {"type": "bluesky", "handle": "me.example"},
    }
    feeds = [
        {"name": "plain", "url": "https://b.example/feed", "accounts": ["m", "b"]},
        {"name": "mine", "url": "https://b.example/feed2", "accounts": ["b"], "template": "{title}"},
    ]
    config = parse_config({"accounts": accounts, "feeds": feeds})
    assert config.post_settings(config.feed("plain"), "m").template == DEFAULT_TEMPLATE
    bluesky = config.post_settings(config.feed("plain"), "b")
    assert (bluesky.template, bluesky.template_untitled) == BLUESKY_TEMPLATES
    assert "{url}" not in bluesky.template + bluesky.template_untitled
    assert config.post_settings(config.feed("mine"), "b").template == "{title}"  # no {url}: the card or the end has it


def _model_keys(model, prefix: str) -> set[str]:
    keys = set()
    for name, field in model.model_fields.items():
        keys.add(f"{prefix}.{name}")
    return keys


def _toml_keys(data, prefix: str) -> set[str]:
    keys = set()
    for key, value in data.items():
        keys.add(f"{prefix}.{key}")
    return keys


def test_every_accepted_key_is_in_the_example_and_nothing_else():
    """config.example.toml documents every key the code accepts, and only those."""
    data = tomllib.loads(EXAMPLE.read_text())
    accounts = data["accounts"]
    feed = data["feeds"][0]
    shown = (
        _toml_keys(data["bridge"], "bridge")
        | _toml_keys(data["alerts"], "alerts")
        | {key for account in accounts.values() for key in _toml_keys(account, "account")}
        | _toml_keys(feed, "feed")
        | _toml_keys(feed["hashtags"], "hashtags")
        | {key for rule in feed["rules"] for key in _toml_keys(rule, "rule")}
        | {key for override in feed["overrides"].values() for key in _toml_keys(override, "override")}
    )
    accepted = (
        _model_keys(BridgeSettings, "bridge")
        | {key for entry in PLATFORMS for key in _model_keys(entry.account_model, "account")}
        | _model_keys(AlertSettings, "alerts")
        | _model_keys(FeedConfig, "feed")
        | _model_keys(HashtagSettings, "hashtags")
        | _model_keys(CategoryRule, "rule")
    )
    # An override takes exactly the post options; the example shows one of them, the test checks the class.
    assert {key for key in shown if key.startswith("override.")} <= _model_keys(PostOptions, "override")
    shown = {key for key in shown if not key.startswith("override.")}
    assert accepted - shown == set(), "accepted but not documented in config.example.toml"
    assert shown - accepted == set(), "documented but not accepted"


@pytest.mark.parametrize(
    "data, key, words",
    [
        ({"bridge": {"intervall": "5m"}}, "bridge.intervall", "unknown key"),
        ({"accounts": {"m": {"type": "mastodon", "instance": "https://m.example", "colour": 1}}}, "accounts.m.colour", "unknown key"),
        ({"feeds": [{"name": "blog", "url": "https://b.example/feed", "accounts": ["nope"]}]}, "feeds[0] (name = 'blog').accounts", "[accounts.nope]"),
        ({"feeds": [{"name": "blog"}]}, "feeds[0] (name = 'blog').url", "is required"),
        ({"feeds": [{"name": "blog", "url": "https://b.example/feed", "template": "{tittle} {url}"}]}, "feeds[0] (name = 'blog').template", "{tittle}"),
        ({"feeds": [{"name": "blog", "url": "https://b.example/feed", "interval": "soon"}]}, "feeds[0] (name = 'blog').interval", "15m"),
        ({"feeds": [{"name": "blog", "url": "ftp://b.example/feed"}]}, "feeds[0] (name = 'blog').url", "http(s)"),
        ({"feeds": [{"name": "a", "url": "https://b.example/1"}, {"name": "a", "url": "https://b.example/2"}]}, "feeds[1] (name = 'a').name", "unique"),
        ({"accounts": {"m": {"type": "mastodon"}}}, "accounts.m", "instance"),
        ({"accounts": {"b": {"type": "bluesky", "handle": "x.test", "access_token": {"env": "X"}}}}, "accounts.b", "Mastodon setting"),
        ({"accounts": {"b": {"type": "bluesky", "handle": "x.test", "app_password": {"env": "A", "file": "f"}}}}, "accounts.b.app_password", "exactly one"),
        ({"accounts": {"x": {"type": "friendica"}}}, "accounts.x.type", "mastodon"),
    ],
)
def test_validation_errors_name_the_key_and_the_fix(data, key, words):
    error = _error(data)
    assert error.key == key
    assert words in str(error)
    assert error.fix, "every config error says how to fix it"


def test_durations():
    assert parse_duration("90s") == 90
    assert parse_duration("15m") == 900
    assert parse_duration("2h") == 7200
    assert parse_duration("7d") == 7 * 86400
    assert parse_duration(30) == 30
    with pytest.raises(ValueError):
        parse_duration("-5m")


def _account_config(**account) -> dict:
    return {"accounts": {"main": {"type": "mastodon", "instance": "https://m.example", **account}}}


def test_secret_from_env(monkeypatch):
    monkeypatch.setenv("BRIDGE_TEST_TOKEN", "tok-123\n")
    config = parse_config(_account_config(access_token={"env": "BRIDGE_TEST_TOKEN"}))
    secret = resolve_secret(config, "main")
    assert secret.reveal() == "tok-123"
    assert "tok-123" not in repr(secret) and "tok-123" not in str(secret)


def test_secret_from_file_relative_to_the_config(tmp_path):
    (tmp_path / "token").write_text("file-token\n")
    config_path = tmp_path / "config.toml"
    config_path.write_text('[accounts.main]\ntype = "mastodon"\ninstance = "https://m.example"\naccess_token = { file = "token" }\n')
    assert resolve_secret(load_config(config_path), "main").reveal() == "file-token"


def test_secret_found_in_credentials_directory(tmp_path, monkeypatch):
    (tmp_path / "main").write_text("from-systemd")
    monkeypatch.setenv("CREDENTIALS_DIRECTORY", str(tmp_path))
    config = parse_config(_account_config())
    assert resolve_secret(config, "main").reveal() == "from-systemd"


def test_missing_secret_names_the_key_and_all_three_ways(monkeypatch):
    monkeypatch.delenv("CREDENTIALS_DIRECTORY", raising=False)
    config = parse_config(_account_config())
    with pytest.raises(ConfigError) as info:
        resolve_secret(config, "main")
    assert info.value.key == "accounts.main.access_token"
    assert "env" in info.value.fix and "file" in info.value.fix and "LoadCredential" in info.value.fix


def test_config_lookup_order(tmp_path, monkeypatch):
    from bridge.config import default_config_path

    monkeypatch.delenv("BRIDGE_CONFIG", raising=False)
    monkeypatch.delenv("CONFIGURATION_DIRECTORY", raising=False)
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xdg"))
    assert default_config_path() == tmp_path / "xdg" / "bridge" / "config.toml"
    monkeypatch.setenv("CONFIGURATION_DIRECTORY", str(tmp_path / "etc"))
    assert default_config_path() == tmp_path / "etc" / "config.toml"
    monkeypatch.setenv("BRIDGE_CONFIG", str(tmp_path / "explicit.toml"))
    assert default_config_path() == tmp_path / "explicit.toml"


def test_missing_config_file_says_where_it_looked(tmp_path):
    with pytest.raises(ConfigError) as info:
        load_config(tmp_path / "nope.toml")
    assert str(tmp_path / "nope.toml") in str(info.value)
    assert "config.example.toml" in info.value.fix


def test_toml_syntax_error_is_a_config_error(tmp_path):
    path = tmp_path / "config.toml"
    path.write_text("[bridge\n")
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_config(path)


def test_state_path_defaults(tmp_path, monkeypatch):
    config = parse_config({})
    monkeypatch.delenv("STATE_DIRECTORY", raising=False)
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))
    assert config.state_path() == tmp_path / "data" / "bridge" / "bridge.sqlite3"
    monkeypatch.setenv("STATE_DIRECTORY", str(tmp_path / "systemd-state"))
    assert config.state_path() == tmp_path / "systemd-state" / "bridge.sqlite3"


# --- values the service cannot use (issue 13, defect 9) ------------------------------------------------------

_BASE = {
    "bridge": {},
    "accounts.m": {"type": '"mastodon"', "instance": '"https://m.example"', "access_token": '{ env = "BRIDGE_TEST_TOKEN" }'},
    "feeds": {"name": '"blog"', "url": '"https://b.example/feed"', "accounts": '["m"]'},
}
_FEED = "feeds[0] (name = 'blog')"

# (table, key, TOML value, the key path the error must name). Every numeric setting, at or past each end of its
# range, and every string setting that reaches a header, a file name or the scheduler.
UNUSABLE = [
    ("bridge", "interval", "1e20", "bridge.interval"),
    ("bridge", "interval", '"99999999999w"', "bridge.interval"),
    ("bridge", "interval", "nan", "bridge.interval"),
    ("bridge", "interval", "inf", "bridge.interval"),
    ("bridge", "interval", "0", "bridge.interval"),
    ("bridge", "interval", "-60", "bridge.interval"),
    ("bridge", "max_post_age", '"400d"', "bridge.max_post_age"),
    ("bridge", "max_post_age", "-inf", "bridge.max_post_age"),
    ("bridge", "connect_timeout", "0", "bridge.connect_timeout"),
    ("bridge", "read_timeout", '"2h"', "bridge.read_timeout"),
    ("bridge", "total_timeout", "nan", "bridge.total_timeout"),
    ("bridge", "max_backoff", "1e300", "bridge.max_backoff"),
    ("bridge", "delivery_interval", '"0s"', "bridge.delivery_interval"),
    ("bridge", "retry_delay", "inf", "bridge.retry_delay"),
    ("bridge", "max_feed_bytes", "1e30", "bridge.max_feed_bytes"),
    ("bridge", "max_feed_bytes", "100", "bridge.max_feed_bytes"),
    ("bridge", "max_feed_bytes", "nan", "bridge.max_feed_bytes"),
    ("bridge", "max_concurrency", "0", "bridge.max_concurrency"),
    ("bridge", "per_host_concurrency", "-1", "bridge.per_host_concurrency"),
    ("bridge", "flood_threshold", "0", "bridge.flood_threshold"),
    ("bridge", "flood_threshold", "2.5", "bridge.flood_threshold"),
    ("bridge", "user_agent", '"bridge\\r\\nX-Injected: 1"', "bridge.user_agent"),
    ("bridge", "user_agent", '"bridge\\u0000"', "bridge.user_agent"),
    ("bridge", "user_agent", '"bridge\\u007f"', "bridge.user_agent"),
    ("bridge", "user_agent", '"brídge"', "bridge.user_agent"),
    ("bridge", "user_agent", '"   "', "bridge.user_agent"),
    ("bridge", "state", '"/tmp/state\\u0000.sqlite3"', "bridge.state"),
    ("bridge", "language", '"English"', "bridge.language"),
    ("accounts.m", "posts_per_hour", "0", "accounts.m.posts_per_hour"),
    ("accounts.m", "posts_per_day", "1e20", "accounts.m.posts_per_day"),
    ("accounts.m", "max_attempts", "100000", "accounts.m.max_attempts"),
    ("accounts.m", "instance", '"https://m.example\\r\\n"', "accounts.m.instance"),
    ("accounts.m", "instance", '"https://m.example:99999"', "accounts.m.instance"),
    ("accounts.m", "access_token", '{ env = "BRIDGE\\u0000TOKEN" }', "accounts.m.access_token.env"),
    ("accounts.m", "access_token", '{ file = "/run/token\\u0000" }', "accounts.m.access_token.file"),
    ("accounts.m", "content_warning", '"cw\\u001b[2J"', "accounts.m.content_warning"),
    ("feeds", "interval", "1e20", f"{_FEED}.interval"),
    ("feeds", "interval", '"0s"', f"{_FEED}.interval"),
    ("feeds", "url", '"https://b.example/feed\\nHost: evil"', f"{_FEED}.url"),
    ("feeds", "url", '"https:///feed"', f"{_FEED}.url"),
    ("feeds", "hashtags", "{ max = 1e9 }", f"{_FEED}.hashtags.max"),
    ("feeds", "template", '"{title}\\u0000\\n{url}"', f"{_FEED}.template"),
]


def _config_with(tmp_path: Path, table: str, key: str, value: str) -> Path:
    tables = {name: dict(lines) for name, lines in _BASE.items()}
    tables[table][key] = value
    text = f'[bridge]\nstate = "{tmp_path}/state.sqlite3"\n' if "state" not in tables["bridge"] else "[bridge]\n"
    for name, lines in tables.items():
        header = "[[feeds]]" if name == "feeds" else f"[{name}]"
        text += ("" if name == "bridge" else header + "\n") + "".join(f"{k} = {v}\n" for k, v in lines.items())
    path = tmp_path / "config.toml"
    path.write_text(text)
    return path


@pytest.mark.parametrize("table, key, value, where", UNUSABLE, ids=[f"{t}.{k}={v}" for t, k, v, _ in UNUSABLE])
def test_values_the_service_cannot_use_are_refused_naming_key_and_fix(tmp_path, table, key, value, where):
    with pytest.raises(ConfigError) as info:
        load_config(_config_with(tmp_path, table, key, value))
    assert info.value.key == where
    assert info.value.fix and info.value.fix != "see config.example.toml for the accepted values"


@pytest.mark.parametrize("command", ["check-config", "poll", "run"])
@pytest.mark.parametrize("table, key, value, where", UNUSABLE, ids=[f"{t}.{k}={v}" for t, k, v, _ in UNUSABLE])
def test_check_config_poll_and_run_exit_2_on_unusable_values(tmp_path, capsys, monkeypatch, command, table, key, value, where):
    from bridge.cli import main

    monkeypatch.setenv("BRIDGE_TEST_TOKEN", "a-token-for-the-test")
    with pytest.raises(SystemExit) as exited:
        main(["--config", str(_config_with(tmp_path, table, key, value)), command])
    assert exited.value.code == 2
    stderr = capsys.readouterr().err
    assert stderr.startswith(f"config error: {where}: ") and " — " in stderr
    assert not (tmp_path / "state.sqlite3").exists()  # nothing started


def test_the_edges_of_each_range_are_accepted(tmp_path):
    """The bounds are usable values themselves: a year, an hour's timeout, 100 attempts."""
    config = load_config(_config_with(tmp_path, "bridge", "interval", '"365d"'))
    assert config.bridge.interval == 365 * 86400
    data = {"bridge": {"read_timeout": 0.3, "total_timeout": "1h", "max_backoff": "52w", "user_agent": "my bot/1.0"},
            "accounts": {"m": {"type": "mastodon", "instance": "https://m.example:8443", "max_attempts": 100,
                               "posts_per_hour": 10**12}}}
    config = parse_config(data)
    assert (config.bridge.read_timeout, config.bridge.total_timeout, config.accounts["m"].max_attempts) == (0.3, 3600, 100)


def test_account_names_must_be_usable_as_file_names():
    error = _error({"accounts": {"../etc/passwd": {"type": "mastodon", "instance": "https://m.example"}}})
    assert error.key == "accounts.'../etc/passwd'"
    assert "letters, digits" in error.fix


@pytest.mark.parametrize("content", [b"\x89PNG\r\n\x1a\nXSECRETX\x00\x00\x00\rIHDR", b"XSECRETX\xff\xfe", b"XSECRETX\x00",
                                     b"XSECRETX" + b"\x00" * 70_000],
                         ids=["png", "not-utf8", "nul", "huge"])
def test_a_binary_secret_file_is_a_config_error_naming_the_file_not_its_content(tmp_path, capsys, content):
    from bridge.cli import main

    secret = tmp_path / "token"
    secret.write_bytes(content)
    secret.chmod(0o600)
    config = tmp_path / "config.toml"
    config.write_text(f'[accounts.m]\ntype = "mastodon"\ninstance = "https://m.example"\naccess_token = {{ file = "{secret}" }}\n')
    with pytest.raises(SystemExit) as exited:
        main(["--config", str(config), "check-config"])
    assert exited.value.code == 2
    stderr = capsys.readouterr().err
    assert stderr.startswith(f"config error: accounts.m.access_token: the secret file {secret} is ")
    assert "plain text" in stderr and "XSECRETX" not in stderr


def test_a_credential_with_a_line_break_inside_is_refused(tmp_path, monkeypatch):
    monkeypatch.setenv("BRIDGE_TEST_TOKEN", "first-half\nsecond-half")
    config = parse_config(_account_config(access_token={"env": "BRIDGE_TEST_TOKEN"}))
    with pytest.raises(ConfigError, match="control characters") as info:
        resolve_secret(config, "main")
    assert "first-half" not in str(info.value)


@pytest.mark.parametrize("pace", ["99999999999w", "400d", "nan"])
def test_backfill_pace_out_of_range_exits_2(tmp_path, capsys, pace):
    from bridge.cli import main

    config = tmp_path / "config.toml"
    config.write_text(f'[bridge]\nstate = "{tmp_path}/state.sqlite3"\n[[feeds]]\nname = "blog"\nurl = "https://b.example/feed"\n')
    with pytest.raises(SystemExit) as exited:
        main(["--config", str(config), "backfill", "--feed", "blog", "--pace", pace])
    assert exited.value.code == 2
    assert capsys.readouterr().err.startswith(f"config error: --pace: {pace!r} is ")
    assert not (tmp_path / "state.sqlite3").exists()
