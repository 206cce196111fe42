"""The platform registry is the one place bridge learns which platforms exist (bridge/platforms/, docs/platforms.md).

A platform is one package and one registry line: a toy platform registered here (its own account fields, its own
credential, its own payload, record key and status fields) goes through config, polling, delivery, preview and
status without a line of bridge changing.
"""

from __future__ import annotations

import ast
import json
import time
from pathlib import Path

import pytest
from click.testing import CliRunner
from pydantic import model_validator

import bridge.platforms as registry
from bridge.cli import cli
from bridge.config import AccountConfig, SecretRef, Text, parse_config
from bridge.errors import ConfigError
from bridge.platforms import PLATFORMS, platform
from bridge.platforms.base import Platform
from bridge.state import State
from tests.fake_target import FakeTarget
from tests.test_pipeline import Clock, posts, rss

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ROOT / "bridge" / "platforms"


def _outside_the_platform_packages() -> list[Path]:
    """Every module of bridge but the platforms' own packages and the registry (bridge/platforms/__init__.py)."""
    own = {PACKAGES / entry.name for entry in PLATFORMS} | {PACKAGES / "__init__.py"}
    return [path for path in sorted((ROOT / "bridge").rglob("*.py"))
            if not any(path == place or place in path.parents for place in own)]


def _platform_mentions(path: Path, root: Path = ROOT) -> list[str]:
    """String constants that are a platform's name, and imports of a platform's package, in one module."""
    names = {entry.name for entry in PLATFORMS}
    found = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Constant) and isinstance(node.value, str) and node.value.casefold() in names:
            found.append(f"{path.relative_to(root)}:{node.lineno}: the string {node.value!r}")
        modules = ([alias.name for alias in node.names] if isinstance(node, ast.Import)
                   else [node.module or ""] if isinstance(node, ast.ImportFrom) else [])
        for module in modules:
            if any(module == f"bridge.platforms.{name}" or module.startswith(f"bridge.platforms.{name}.") for name in names):
                found.append(f"{path.relative_to(root)}:{node.lineno}: imports {module}")
    return found


def test_no_module_outside_the_platform_packages_names_a_platform():
    """`if account.type == "bluesky"` anywhere else would make a new platform a hunt through the engine."""
    modules = _outside_the_platform_packages()
    assert ROOT / "bridge" / "compose.py" in modules and PACKAGES / "base.py" in modules  # the scan sees the engine
    mentions = [mention for path in modules for mention in _platform_mentions(path)]
    assert mentions == [], "name platforms only in bridge/platforms/<name>/ and the registry:\n" + "\n".join(mentions)


def test_the_scan_finds_a_platform_branch(tmp_path):
    """The check above can fail: a branch on a platform's name, or an import of its package, is found."""
    module = tmp_path / "bridge" / "engine.py"
    module.parent.mkdir()
    module.write_text('from bridge.platforms.bluesky.target import BlueskyTarget\n\n'
                      'def rkey(kind):\n    return 1 if kind == "Bluesky" else None\n')
    assert len(_platform_mentions(module, tmp_path)) == 2


def test_the_registry_lists_each_platform_once_and_finds_it_by_its_account_type():
    assert [entry.name for entry in PLATFORMS] == ["mastodon", "bluesky", "nostr", "threads"]  # preview's default accounts, in order
    for entry in PLATFORMS:
        assert platform(entry.name) is entry
        assert entry.account_model.model_fields["type"].annotation.__args__ == (entry.name,)
        assert entry.credential in entry.account_model.model_fields
    with pytest.raises(KeyError):
        platform("friendica")


def test_a_platform_package_loads_no_sdk():
    """The commands that publish nothing (status, preview, doctor --offline) never import Mastodon.py, atproto or
    nostr-sdk."""
    import subprocess
    import sys

    code = ("import sys, bridge.platforms, bridge.cli, bridge.compose, bridge.status, bridge.doctor, bridge.wiring\n"
            "print(sorted({m.split('.')[0] for m in sys.modules} & {'mastodon', 'atproto', 'atproto_client', 'nostr_sdk', 'websockets'}))")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "[]"


# --- a toy platform: one package's worth, registered in the test ---------------------------------------------------


class ToyAccount(AccountConfig):
    type: str  # the registry checks the name
    relays: list[Text] = []
    secret_key: SecretRef | None = None
    shout: bool = False

    @model_validator(mode="after")
    def _has_relays(self) -> "ToyAccount":
        if not self.relays:
            raise ValueError('a toy account needs relays = ["wss://relay.example"]')
        return self

    @property
    def server_url(self) -> str:
        return self.relays[0]


class ToyTarget(FakeTarget):
    secret: str = ""

    def seal_payload(self, payload: dict) -> dict:
        """Finished with the credential before it is stored, as Nostr signs its events."""
        return {**payload, "sig": f"signed with {len(self.secret)} characters"}


made: dict[str, ToyTarget] = {}


def _toy_target(context):
    target = made.setdefault(context.account, ToyTarget(context.account, platform="toy"))
    target.secret = context.secret.reveal()  # resolved like every credential
    return target


def _toy_payload(post, settings, inputs):
    note = f"{post.title} {post.link}"
    return {"note": note.upper() if inputs.account and inputs.account.shout else note,
            "at": inputs.created_at.isoformat(timespec="seconds")}


TOY = Platform(
    name="toy",
    title="Toy",
    account_model=ToyAccount,
    credential="secret_key",
    credential_noun="a secret key",
    make_target=_toy_target,
    payload=_toy_payload,
    describe=lambda payload, limits: (payload["note"], ["a toy note"]),
    default_templates=("{title}", "{summary}"),
    new_record_key=lambda now: f"toy-{int(now)}",
    status=lambda name, account, info: {"handle": f"relays {len(account.relays)}"},
)


@pytest.fixture
def toy(monkeypatch, tmp_path):
    """The toy platform on the registry's list, as its one line there would put it."""
    monkeypatch.setattr(registry, "PLATFORMS", (*PLATFORMS, TOY))
    monkeypatch.setattr(registry, "_BY_NAME", {**registry._BY_NAME, "toy": TOY})
    monkeypatch.setenv("TOY_SECRET", "toy-secret")
    made.clear()
    return tmp_path


def _toy_config(feed_url: str, state: Path, **account) -> dict:
    return {
        "bridge": {"state": str(state), "allow_private_addresses": True},
        "accounts": {"t": {"type": "toy", "relays": ["wss://relay.example"], "secret_key": {"env": "TOY_SECRET"},
                           **account}},
        "feeds": [{"name": "blog", "url": feed_url, "accounts": ["t"]}],
    }


def test_a_new_platform_brings_its_own_config_fields_and_checks(toy):
    config = parse_config(_toy_config("https://b.example/feed", toy / "s.sqlite3"))
    assert config.accounts["t"].relays == ["wss://relay.example"]
    assert config.post_settings(config.feed("blog"), "t").template == "{title}"  # its own default template
    cases = [
        ({"colour": 1}, "accounts.t.colour", "unknown key"),
        ({"relays": []}, "accounts.t", "a toy account needs relays"),
        ({"access_token": {"env": "X"}}, "accounts.t", "access_token is a Mastodon setting; a toy account uses relays, secret_key and shout"),
    ]
    for extra, key, words in cases:
        with pytest.raises(ConfigError) as error:
            parse_config(_toy_config("https://b.example/feed", toy / "s.sqlite3", **extra))
        assert (error.value.key, words in str(error.value)) == (key, True), str(error.value)
    with pytest.raises(ConfigError) as error:  # and the other platforms know its settings as the toy's
        parse_config({"accounts": {"m": {"type": "mastodon", "instance": "https://m.example", "shout": True}}})
    assert "shout is a Toy setting; a mastodon account uses instance and access_token" in str(error.value)
    with pytest.raises(ConfigError) as error:
        parse_config({"accounts": {"x": {"type": "friendica"}}})
    assert error.value.key == "accounts.x.type" and "mastodon, bluesky, nostr, threads, toy" in str(error.value)


def test_a_new_platform_is_polled_delivered_previewed_and_reported_through_the_interface(toy, feed_server):
    from bridge.pipeline import Poller
    from bridge.status import collect_status
    from bridge.wiring import build_deliverer

    feed_server.route("/feed", rss(posts(2)))
    config = parse_config(_toy_config(feed_server.url("/feed"), toy / "s.sqlite3", shout=True))
    clock = Clock()
    with State.open(toy / "s.sqlite3") as state:
        Poller(config, state, clock=clock).poll()  # the baseline
        feed_server.route("/feed", rss(posts(1, start=2) + posts(2)))
        clock.now += 1000  # past the feed's interval
        Poller(config, state, clock=clock).poll()
        [queued] = state.deliveries(account="t")
        assert queued.rkey == f"toy-{int(clock.now)}"  # its retry identity, chosen when queued
        deliverer = build_deliverer(config, state, clock=clock)
        try:
            deliverer.deliver_due()
        finally:
            deliverer.close()
        sent = {"note": "POST NUMBER 2 HTTPS://BLOG.EXAMPLE/POSTS/2/",  # the account's own option applied
                "at": time.strftime("%Y-%m-%dT%H:%M:%S+00:00", time.gmtime(clock.now)), "sig": "signed with 10 characters"}
        assert made["t"].posts == {queued.rkey: sent}
        assert state.deliveries(account="t")[0].payload == sent  # stored sealed: a retry sends the same
        report = collect_status(config, state, now=clock.now)
    [account] = report["accounts"]
    assert (account["type"], account["target"], account["handle"], account["posted"]) == ("toy", "wss://relay.example", "relays 1", 1)

    config_file = toy / "config.toml"
    config_file.write_text(f'[accounts.t]\ntype = "toy"\nrelays = ["wss://relay.example"]\n'
                           f'secret_key = {{ env = "TOY_SECRET" }}\n')
    result = CliRunner().invoke(cli, ["--config", str(config_file), "preview", "--url", feed_server.url("/feed"),
                                      "--json", "--no-fetch", "--limit", "1"])
    assert result.exit_code == 0, result.output
    [item] = json.loads(result.stdout)
    assert (item["account"], item["platform"], item["payload"]["note"]) == ("t", "toy", "Post number 2 https://blog.example/posts/2/")
