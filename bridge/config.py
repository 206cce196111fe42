"""Load and validate the TOML config; resolve credentials and per-(feed, account) post settings.

Where the config comes from: `--config PATH`, else `$BRIDGE_CONFIG`, else `$CONFIGURATION_DIRECTORY/config.toml`
(systemd's ConfigurationDirectory=), else `$XDG_CONFIG_HOME/bridge/config.toml` (~/.config/bridge/config.toml).
Every problem becomes a ConfigError that names the key path and the fix.
"""

from __future__ import annotations

import math
import os
import re
import string
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, ClassVar, Literal
from urllib.parse import urlsplit

from pydantic import (
    AfterValidator,
    AliasChoices,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationError,
    WrapValidator,
    create_model,
    model_validator,
)

from bridge.errors import ConfigError

if TYPE_CHECKING:
    from bridge.filters import EntryFilter
from bridge.language import normalise_language
from bridge.redact import register_secret, register_url_secrets

TEMPLATE_FIELDS = frozenset({"title", "summary", "url", "hashtags", "author", "feed_title", "published"})
DEFAULT_TEMPLATE = "{title}\n\n{summary}\n\n{url}\n\n{hashtags}"
DEFAULT_TEMPLATE_UNTITLED = "{summary}\n\n{url}\n\n{hashtags}"
DEFAULT_USER_AGENT = "bridge/{version} (+https://pypi.org/project/bridge-crosspost/; feed-to-Mastodon/Bluesky)"
VISIBILITIES = ("public", "unlisted", "private", "direct")

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(s|sec|m|min|h|d|w)?\s*$", re.IGNORECASE)
_UNIT_SECONDS = {"s": 1, "sec": 1, "m": 60, "min": 60, "h": 3600, "d": 86400, "w": 604800}

# Ranges of the settings. Beyond a year a schedule means "never", and the scheduler's and the status page's
# datetime arithmetic overflows; a timeout longer than an hour only hides a dead server.
MAX_DURATION = 365 * 86400.0
MAX_TIMEOUT = 3600.0
# Counts used in rate arithmetic stay exact as floats (< 2**53), so no division or product can overflow.
MAX_COUNT = 10**15
# A delay doubles with each attempt: 2**100 retry delays is still a finite float.
MAX_ATTEMPTS = 100
MAX_FEED_BYTES = 1_000_000_000
MAX_CONCURRENCY = 1000
MAX_USER_AGENT = 500
MAX_THREAD_PARTS = 25  # a longer note is cut in its last part: its link is on the first


_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")


class SettingError(ValueError):
    """A bad value and its fix; _config_error adds the key path."""

    def __init__(self, problem: str, fix: str) -> None:
        self.fix = fix
        super().__init__(problem)


def format_duration(seconds: float) -> str:
    for unit in ("d", "h", "m"):
        if seconds >= _UNIT_SECONDS[unit] and seconds % _UNIT_SECONDS[unit] == 0:
            return f"{seconds / _UNIT_SECONDS[unit]:g}{unit}"
    return f"{seconds:g}s"


def parse_duration(value: Any) -> float:
    """'90s', '15m', '2h', '7d', '1w' or a number of seconds -> seconds (finite, not negative)."""
    if isinstance(value, bool):
        raise ValueError("expected a duration such as 90s, 15m, 2h, 7d")
    if isinstance(value, (int, float)):
        seconds = float(value)
    else:
        match = _DURATION.match(str(value))
        if not match:
            raise ValueError(f"{value!r} is not a duration; write it like 90s, 15m, 2h or 7d")
        seconds = float(match.group(1)) * _UNIT_SECONDS[(match.group(2) or "s").lower()]
    if not math.isfinite(seconds):
        raise ValueError(f"{value!r} is not a duration; write it like 90s, 15m, 2h or 7d")
    if seconds < 0:
        raise ValueError("a duration cannot be negative")
    return seconds


def bounded_duration(value: Any, low: float, high: float, *, low_inclusive: bool = True) -> float:
    """parse_duration, and the result must lie in [low, high] (or (low, high]); else a SettingError with the fix."""
    least = f"at least {format_duration(low)}" if low_inclusive else f"more than {format_duration(low)}"
    fix = f"write a duration of {least} and at most {format_duration(high)}, like 90s, 15m, 2h or 7d"
    try:
        seconds = parse_duration(value)
    except ValueError:
        raise SettingError(f"{value!r} is not a duration", fix) from None
    if seconds > high or seconds < low or (seconds == low and not low_inclusive):
        raise SettingError(f"{value!r} is out of range: it must be {least} and at most {format_duration(high)}", fix)
    return seconds


def _duration(low: float, high: float, *, low_inclusive: bool = True):
    """A duration setting that must lie in [low, high] (or (low, high])."""
    return Annotated[float, BeforeValidator(lambda value: bounded_duration(value, low, high, low_inclusive=low_inclusive))]


def _count(low: int, high: int):
    """A whole-number setting that must lie in [low, high]."""

    def check(value: Any) -> int:
        whole = isinstance(value, int) and not isinstance(value, bool)
        if not whole and isinstance(value, float) and math.isfinite(value) and value.is_integer():
            value, whole = int(value), True
        if not whole or not low <= value <= high:
            raise SettingError(f"{value!r} is not a whole number from {low} to {high}",
                               f"use a whole number from {low} to {high}")
        return value

    return Annotated[int, BeforeValidator(check)]


_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f]")  # a regex: a hundred thousand feed URLs are checked at start-up


def _printable(value: str) -> str:
    """Refuse control characters: a CR/LF would split an HTTP header, a NUL is refused by every path call."""
    if _CONTROL.search(value):
        raise SettingError(f"{value!r} contains control characters (line breaks, NUL...)",
                           "remove them; write the value on one line")
    return value


def _header_value(value: str) -> str:
    """A User-Agent: printable ASCII, since HTTP clients send header values as ASCII and refuse anything else."""
    _printable(value)
    if not value.strip() or len(value) > MAX_USER_AGENT or not value.isascii():
        raise SettingError(f"{value!r} cannot be sent as a User-Agent header",
                           f"use 1 to {MAX_USER_AGENT} printable ASCII characters, no line breaks")
    return value


def _language(value: str | None) -> str | None:
    if value and normalise_language(value) is None:
        raise SettingError(f"{value!r} is not a language tag", 'write a BCP 47 tag such as "en", "pt-BR" or "zh-Hant"')
    return value


def _env_name(value: str | None) -> str | None:
    if value is not None and not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", value):
        raise SettingError(f"{value!r} is not an environment variable name",
                           "use letters, digits and _ only, not starting with a digit, e.g. BRIDGE_TOKEN")
    return value


def _listen_address(value: str | None) -> str | None:
    """`HOST:PORT` for the HTTP server; "" means off. The host is an IP address or localhost, never a name
    to resolve: whether it is loopback (no token needed) must not depend on DNS."""
    if not value:
        return None
    from bridge.web.access import parse_listen

    try:
        parse_listen(value)
    except ValueError as exc:
        raise SettingError(str(exc), 'write it like "127.0.0.1:8787", "[::1]:8787" or "0.0.0.0:8787" '
                           '(beyond loopback also set http_token); "" turns the server off') from None
    return value


def _pattern(value: str) -> str:
    """A filter's regular expression: it must compile (Python's re syntax)."""
    _printable(value)
    try:
        re.compile(value)
    except re.error as exc:
        raise SettingError(f"{value!r} is not a regular expression: {exc}",
                           "write a Python regular expression, e.g. '(?i)\\bweeknotes\\b' (single quotes in TOML keep backslashes)") from None
    return value


Pattern = Annotated[str, AfterValidator(_pattern)]


def _public_url(value: str | None) -> str | None:
    """The base URL the world reaches http_listen at (the writer's reverse proxy): WebSub hubs call back there."""
    if not value:
        return None
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.hostname or parts.query or parts.fragment:
        raise SettingError(f"{value!r} is not an http(s) base URL",
                           'write the address your reverse proxy serves bridge at, e.g. "https://example.org/bridge"')
    return value.rstrip("/")


def _switch(value: Any) -> bool:
    """An on/off setting: TOML's true or false, nothing else ("yes" and 1 are refused with the fix)."""
    if not isinstance(value, bool):
        raise SettingError(f"{value!r} is not true or false", "write true or false, without quotes")
    return value


Duration = _duration(1.0, MAX_DURATION)
Switch = Annotated[bool, BeforeValidator(_switch)]
Timeout = _duration(0.0, MAX_TIMEOUT, low_inclusive=False)
Text = Annotated[str, AfterValidator(_printable)]
Language = Annotated[str | None, AfterValidator(_language)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class SecretRef(_Strict):
    """Where a secret lives: an environment variable or a file. Never the secret itself."""

    env: Annotated[str | None, AfterValidator(_env_name)] = None
    file: Text | None = None

    @model_validator(mode="after")
    def _one_source(self) -> "SecretRef":
        if bool(self.env) == bool(self.file):
            raise ValueError('give exactly one of env = "VARIABLE" or file = "/path/to/secret"')
        return self


class HashtagSettings(_Strict):
    enabled: bool = True
    max: _count(0, 30) = 3
    rename: dict[str, str] = Field(default_factory=dict)
    ignore: list[str] = Field(default_factory=list)


class CategoryRule(_Strict):
    """When an entry carries one of `categories`, set a content warning and/or visibility."""

    categories: list[str] = Field(min_length=1)
    content_warning: Text | None = None
    visibility: Literal["public", "unlisted", "private", "direct"] | None = None


ImageMode = Literal["auto", "attach", "card", "none"]


def _image_mode(value):
    """The `images` setting; also given as attach_image = true/false, its older name."""
    return {True: "attach", False: "card"}.get(value, value) if isinstance(value, bool) else value


class PostOptions(_Strict):
    """Settings that shape a post; allowed on an account, a feed, and a feed's per-account override."""

    template: str | None = None
    template_untitled: str | None = None
    # `language` is a fallback for posts whose language is neither declared nor detected with confidence;
    # `force_language` overrules everything (a feed that declares or reads as the wrong language).
    language: Language = None
    force_language: Language = None
    visibility: Literal["public", "unlisted", "private", "direct"] | None = None
    content_warning: Text | None = None
    # attach_image, the older name, is still read: true is "attach", false is "card".
    images: Annotated[ImageMode | None, BeforeValidator(_image_mode)] = Field(
        None, validation_alias=AliasChoices("images", "attach_image"))
    # Which entries go out (bridge/filters.py, docs/filters.md); each resolved like the settings above.
    include_categories: list[Text] | None = None
    exclude_categories: list[Text] | None = None
    include_pattern: Pattern | None = None
    exclude_pattern: Pattern | None = None
    entry_type: Literal["all", "titled", "untitled"] | None = None
    opt_out_category: Text | None = None  # default "nosyndicate"; "" turns the per-post opt-out off
    # A grace period: a new entry waits this long after first sight, then goes out as it reads by then.
    hold: _duration(0.0, MAX_DURATION) | None = None


class AccountConfig(PostOptions):
    """An [accounts.NAME] table: what every account has. Each platform's model (Platform.account_model, in
    bridge/platforms/<type>/) adds its own fields and checks; `type` picks the model."""

    # Each platform's model is built at its first use: a config with only Mastodon accounts builds no other.
    model_config = ConfigDict(defer_build=True)

    type: Annotated[str, AfterValidator(lambda value: _platform_name(value))]
    # Delivery
    posts_per_hour: _count(1, MAX_COUNT) = 6
    posts_per_day: _count(1, MAX_COUNT) = 40
    edit_on_update: bool = False
    max_attempts: _count(1, MAX_ATTEMPTS) = 12
    # Delete this account's posts of an entry the writer deleted (bridge/deletes.py): off unless set.
    follow_deletes: bool = False
    # Threads for long notes (bridge/render/longnote.py, docs/threads-for-notes.md): an untitled entry too long for
    # one post goes out as a thread of replies to itself, numbered "(1/3)" with thread_numbering; off unless set.
    thread_long_notes: Switch = False
    thread_numbering: Switch = False
    thread_max_parts: _count(2, MAX_THREAD_PARTS) = 10

    @model_validator(mode="after")
    def _threads_where_possible(self) -> "AccountConfig":
        from bridge.platforms import platform

        if self.thread_long_notes and not platform(self.type).long_note_threads:
            raise SettingError(f"thread_long_notes cannot apply to {platform(self.type).title} accounts yet",
                               "remove it: a long note goes out there as one post, cut to fit")
        return self

    @property
    def server_url(self) -> str:
        """The address of the server the account posts through (doctor probes it, status shows it)."""
        raise NotImplementedError

    # The setting that holds that address, as messages name it ("instance" makes "accounts.NAME.instance").
    server_key: ClassVar[str] = ""


def _platform_name(value: str) -> str:
    from bridge.platforms import names

    if value not in names():
        raise SettingError(f"{value!r} is not a platform bridge posts to", f"use one of: {', '.join(names())}")
    return value


def _platform_account(value: Any, handler) -> AccountConfig:
    """Validate an account table with its platform's model; a setting of another platform gets named as such."""
    from bridge.platforms import PLATFORMS, names, platform

    kind = value.get("type") if isinstance(value, dict) else None
    if not isinstance(kind, str) or kind not in names():
        return handler(value)  # the base model says what is wrong with `type`
    own = platform(kind).account_model
    for other in PLATFORMS:
        for key in value:
            if key not in own.model_fields and key in other.account_model.model_fields:
                own_keys = [name for name in own.model_fields if name not in AccountConfig.model_fields]
                uses = " and ".join([", ".join(own_keys[:-1]), own_keys[-1]] if len(own_keys) > 1 else own_keys)
                raise ValueError(f"{key} is a {other.title} setting; a {kind} account uses {uses}")
    return own.model_validate(value)


def _http_url(value: str) -> str:
    """A server's address: an absolute http(s) URL (see _check_url)."""
    if not is_http_url(value):
        raise SettingError(f"{value!r} is not an http(s) URL", "write it like https://mastodon.social")
    return value


ServerUrl = Annotated[str, AfterValidator(_printable), AfterValidator(_http_url)]


class FeedConfig(PostOptions):
    name: str = Field(pattern=_NAME.pattern)
    url: Text
    accounts: list[str] = Field(default_factory=list)
    interval: Duration | None = None
    hashtags: HashtagSettings = Field(default_factory=HashtagSettings)
    rules: list[CategoryRule] = Field(default_factory=list)
    overrides: dict[str, PostOptions] = Field(default_factory=dict)
    enabled: bool = True


class BridgeSettings(_Strict):
    state: Text | None = None
    # The state in PostgreSQL instead of the SQLite file (docs/postgresql.md): a credential, like the others;
    # None or "": the SQLite file.
    database: Text | SecretRef | None = None
    user_agent: Annotated[str, AfterValidator(_header_value)] = DEFAULT_USER_AGENT
    interval: Duration = 900.0
    max_post_age: Duration = 7 * 86400.0
    language: Language = None
    connect_timeout: Timeout = 10.0
    read_timeout: Timeout = 20.0
    total_timeout: Timeout = 60.0
    max_feed_bytes: _count(1024, MAX_FEED_BYTES) = 10_000_000
    max_concurrency: _count(1, MAX_CONCURRENCY) = 16
    per_host_concurrency: _count(1, MAX_CONCURRENCY) = 4
    max_backoff: Duration = 6 * 3600.0
    allow_private_addresses: bool = False
    flood_threshold: _count(1, MAX_COUNT) = 5
    delivery_interval: Duration = 30.0
    retry_delay: Duration = 60.0
    log_format: Literal["text", "json"] = "text"
    log_level: Literal["debug", "info", "warning", "error"] = "info"
    # The daemon's HTTP server (status page, /metrics, /healthz; bridge/web): off unless set. Beyond loopback
    # it needs http_token (bridge/web/access.py checks, when `run` and `check-config` resolve it).
    http_listen: Annotated[str | None, AfterValidator(_listen_address)] = None
    http_token: SecretRef | None = None
    # WebSub (bridge/websub, docs/websub.md): hubs call back at public_url + /websub/<token>, served by http_listen
    public_url: Annotated[str | None, AfterValidator(_public_url)] = None
    websub_poll_interval: Duration = 6 * 3600.0  # a feed whose hub pushes is polled this rarely, for missed pushes
    websub_lease: Duration = 7 * 86400.0  # the lease asked of hubs (they may grant another); renewed before it ends
    # The way back (bridge.reactions, docs/reactions.md)
    syndication_file: Text | None = None  # JSON: permalink -> its remote posts (a Hugo/Jekyll data file)
    comments_dir: Text | None = None  # comments documents, no-JS fragments and the widget files
    reactions: bool | None = None  # gather replies and counts in `bridge run`; None: when comments_dir is set
    reactions_max_age: Duration = 30 * 86400.0  # stop reading a post's reactions this long after it was posted
    # Deletes that follow the blog: a vanished entry's permalink must answer 404/410 twice, this far apart.
    delete_recheck: Duration = 3600.0


def _clock_time(value: str) -> str:
    """HH:MM on a 24-hour clock (the daily digest's time)."""
    if not re.fullmatch(r"([01]\d|2[0-3]):[0-5]\d", value):
        raise SettingError(f"{value!r} is not a time of day", 'write it as HH:MM on a 24-hour clock, e.g. "08:00"')
    return value


# A URL given in the config itself, or { env } / { file } naming where it lives: an alert destination or a ping URL
# usually carries a password or a token, and then belongs outside the config like the accounts' credentials.
UrlOrSecret = Text | SecretRef


class AlertSettings(_Strict):
    """[alerts]: where to tell the writer that something needs them (bridge/alerts/), and the dead-man's switch."""

    destinations: list[UrlOrSecret] = Field(default_factory=list)
    ping_url: UrlOrSecret | None = None
    feed_failing_after: Duration = 6 * 3600.0
    queue_above: _count(1, MAX_COUNT) = 50
    # The service is stalled when no poll has finished for this many of the shortest feed interval.
    stall_after_intervals: _count(2, 1000) = 3
    digest: Literal["off", "daily"] = "off"
    digest_time: Annotated[str, AfterValidator(_clock_time)] = "08:00"


class ConfigModel(_Strict):
    bridge: BridgeSettings = Field(default_factory=BridgeSettings)
    alerts: AlertSettings = Field(default_factory=AlertSettings)
    accounts: dict[str, Annotated[AccountConfig, WrapValidator(_platform_account)]] = Field(default_factory=dict)
    feeds: list[FeedConfig] = Field(default_factory=list)


@dataclass(frozen=True)
class PostSettings:
    """The resolved settings for one (feed, account): what the renderer needs, nothing more."""

    template: str
    template_untitled: str
    language: str | None
    visibility: str
    content_warning: str | None
    images: str = "auto"  # auto | attach | card | none (bridge/render/photos.py)
    hashtags: HashtagSettings = field(default_factory=HashtagSettings)
    rules: tuple[CategoryRule, ...] = ()
    force_language: str | None = None


@dataclass
class Config:
    model: ConfigModel
    path: Path | None = None
    _by_name: dict | None = field(default=None, init=False, repr=False, compare=False)

    @property
    def bridge(self) -> BridgeSettings:
        return self.model.bridge

    @property
    def accounts(self) -> dict[str, AccountConfig]:
        return self.model.accounts

    @property
    def alerts(self) -> AlertSettings:
        return self.model.alerts

    @property
    def feeds(self) -> list[FeedConfig]:
        return self.model.feeds

    def feed(self, name: str) -> FeedConfig:
        found = self.find_feed(name)
        if found is not None:
            return found
        known = ", ".join(f.name for f in self.model.feeds) or "none"
        raise ConfigError("--feed", f"no feed named {name!r}", f"feeds in the config: {known}")

    def find_feed(self, name: str) -> FeedConfig | None:
        """The named feed or None; a dict lookup, since the daemon asks once per job among thousands of feeds."""
        if self._by_name is None:
            self._by_name = {feed.name: feed for feed in self.model.feeds}
        return self._by_name.get(name)

    def state_path(self) -> Path:
        if self.bridge.state:
            return _expand(self.bridge.state, self.path)
        if os.environ.get("STATE_DIRECTORY"):
            return Path(os.environ["STATE_DIRECTORY"].split(":")[0]) / "bridge.sqlite3"
        data_home = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
        return Path(data_home) / "bridge" / "bridge.sqlite3"

    def database_url(self) -> "Secret | None":
        """[bridge] database (written in the config, or its { env } / { file }), or None: the SQLite file."""
        if not self.bridge.database:  # "" as in config.example.toml: SQLite
            return None
        return resolve_url(self, "bridge.database", self.bridge.database, DATABASE_CREDENTIAL)

    def syndication_path(self) -> Path | None:
        return _expand(self.bridge.syndication_file, self.path) if self.bridge.syndication_file else None

    def comments_path(self) -> Path | None:
        return _expand(self.bridge.comments_dir, self.path) if self.bridge.comments_dir else None

    def gathers_reactions(self) -> bool:
        """Does `bridge run` read reactions back? As configured; by default when there is somewhere to show them."""
        if self.bridge.reactions is not None:
            return self.bridge.reactions
        return self.bridge.comments_dir is not None

    def feed_interval(self, feed: FeedConfig) -> float:
        return feed.interval if feed.interval is not None else self.bridge.interval

    def post_settings(self, feed: FeedConfig, account_name: str) -> PostSettings:
        """Override for this account on this feed > feed > account > [bridge] > built-in default."""
        account = self.model.accounts[account_name]
        pick = self._picker(feed, account_name)
        titled, untitled = default_templates(account.type)
        return PostSettings(
            template=pick("template", titled),
            template_untitled=pick("template_untitled", untitled),
            language=pick("language", self.bridge.language),
            force_language=pick("force_language", None),
            visibility=pick("visibility", "public"),
            content_warning=pick("content_warning", None),
            images=pick("images", "auto"),
            hashtags=feed.hashtags,
            rules=tuple(feed.rules),
        )

    def entry_filter(self, feed: FeedConfig, account_name: str) -> EntryFilter:
        """Which of the feed's entries this account gets; each setting resolved like post_settings'."""
        from bridge.filters import DEFAULT_OPT_OUT_CATEGORY, EntryFilter

        pick = self._picker(feed, account_name)
        return EntryFilter(
            include_categories=tuple(pick("include_categories", ())),
            exclude_categories=tuple(pick("exclude_categories", ())),
            include_pattern=pick("include_pattern", None) or None,
            exclude_pattern=pick("exclude_pattern", None) or None,
            entry_type=pick("entry_type", "all"),
            opt_out_category=pick("opt_out_category", DEFAULT_OPT_OUT_CATEGORY),
        )

    def hold(self, feed: FeedConfig, account_name: str) -> float:
        """How long a new entry of this feed waits before it goes to this account (0: no grace period)."""
        return self._picker(feed, account_name)("hold", 0.0)

    def _picker(self, feed: FeedConfig, account_name: str):
        """The value of a PostOptions setting: the first layer that sets it, else the default."""
        layers: list[PostOptions | None] = [feed.overrides.get(account_name), feed, self.model.accounts[account_name]]

        def pick(name: str, default: Any) -> Any:
            for layer in layers:
                if layer is not None and getattr(layer, name) is not None:
                    return getattr(layer, name)
            return default

        return pick


def default_templates(platform: str) -> tuple[str, str]:
    """The built-in (titled, untitled) templates for an account of type `platform`."""
    from bridge.platforms import platform as platform_named

    return platform_named(platform).default_templates


def default_config_path() -> Path:
    if os.environ.get("BRIDGE_CONFIG"):
        return Path(os.environ["BRIDGE_CONFIG"])
    if os.environ.get("CONFIGURATION_DIRECTORY"):
        return Path(os.environ["CONFIGURATION_DIRECTORY"].split(":")[0]) / "config.toml"
    config_home = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(config_home) / "bridge" / "config.toml"


def load_config(path: str | Path | None = None) -> Config:
    """Read and validate the config file; raises ConfigError naming the key and the fix."""
    config_path = Path(path) if path else default_config_path()
    try:
        raw = config_path.read_bytes()
    except FileNotFoundError:
        raise ConfigError(
            "--config",
            f"no config file at {config_path}",
            "copy config.example.toml there, or pass --config PATH / set BRIDGE_CONFIG",
        ) from None
    except OSError as exc:
        raise ConfigError("--config", f"cannot read {config_path}: {exc.strerror}", "check the path and its permissions") from None
    try:
        data = tomllib.loads(raw.decode("utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ConfigError(str(config_path), f"not valid TOML: {exc}", "fix the syntax at the position given") from None
    return parse_config(data, config_path)


def parse_config(data: dict, path: Path | None = None) -> Config:
    feeds = data.get("feeds") if isinstance(data, dict) else None
    plain: dict[int, PlainFeed] = {}
    others = feeds
    if isinstance(feeds, list):
        others = [table for table in feeds if not _is_plain(table)]
        positions = [index for index, table in enumerate(feeds) if not _is_plain(table)]
    try:
        model = ConfigModel.model_validate({**data, "feeds": others} if others is not feeds else data)
    except ValidationError as exc:
        error = exc.errors()[0]
        if others is not feeds and error["loc"][:1] == ("feeds",) and len(error["loc"]) > 1:
            error["loc"] = ("feeds", positions[error["loc"][1]], *error["loc"][2:])  # the table's place in the file
        raise _config_error(error, data) from None
    if others is not feeds:
        accounts: dict[tuple, list[str]] = {}  # one list for every feed posting to the same accounts
        for index, table in enumerate(feeds):
            if _is_plain(table):
                try:
                    basics = _FeedBasics.model_validate(table)
                except ValidationError as exc:
                    error = exc.errors()[0]
                    error["loc"] = ("feeds", index, *error["loc"])
                    raise _config_error(error, data) from None
                shared = accounts.setdefault(tuple(basics.accounts), basics.accounts)
                plain[index] = PlainFeed(basics.name, basics.url, shared, basics.interval, basics.enabled)
        rest = iter(model.feeds)
        model = model.model_copy(update={"feeds": [plain[index] if index in plain else next(rest) for index in range(len(feeds))]})
    config = Config(model=model, path=path)
    _check_references(config)
    return config


# A [[feeds]] table setting nothing but these (a hosted instance's many feeds) is read into a PlainFeed: a
# FeedConfig, a pydantic model, costs 2.3 KB in memory, and 100,000 of them took 231 MB.
_PLAIN_KEYS = ("name", "url", "accounts", "interval", "enabled")
# FeedConfig's own checks of those keys, as a model of its own.
_FeedBasics = create_model("_FeedBasics", __base__=_Strict, **{
    name: (FeedConfig.model_fields[name].rebuild_annotation(), FeedConfig.model_fields[name]) for name in _PLAIN_KEYS})
# What a plain feed has for every other FeedConfig setting: the defaults.
_FEED_DEFAULTS = FeedConfig.model_construct(name="", url="")


def _is_plain(table: Any) -> bool:
    return isinstance(table, dict) and all(key in _PLAIN_KEYS for key in table)


class PlainFeed:
    """A feed read from a plain [[feeds]] table: its name, url, accounts, interval and enabled, and FeedConfig's
    defaults for the rest. Reads like a FeedConfig; a few hundred bytes instead of 2.3 KB."""

    __slots__ = _PLAIN_KEYS

    def __init__(self, name: str, url: str, accounts: list[str], interval: float | None, enabled: bool) -> None:
        self.name, self.url, self.accounts, self.interval, self.enabled = name, url, accounts, interval, enabled

    def __getattr__(self, name: str) -> Any:
        return getattr(_FEED_DEFAULTS, name)

    def __eq__(self, other: object) -> bool:
        if isinstance(other, (PlainFeed, FeedConfig)):
            return all(getattr(self, name) == getattr(other, name) for name in FeedConfig.model_fields)
        return NotImplemented

    def __hash__(self) -> int:
        return hash((self.name, self.url))

    def __repr__(self) -> str:
        return f"PlainFeed(name={self.name!r}, url={self.url!r}, accounts={self.accounts!r})"


def _config_error(error: dict, data: dict) -> ConfigError:
    """`error`: the first of a ValidationError's errors."""
    key = _key_path(error["loc"], data)
    kind = error["type"]
    if kind == "extra_forbidden":
        return ConfigError(key, "unknown key", "remove it or check its spelling against config.example.toml")
    if kind == "missing":
        return ConfigError(key, "is required", "add it; config.example.toml shows its form")
    message = error["msg"].removeprefix("Value error, ")
    fix = getattr((error.get("ctx") or {}).get("error"), "fix", None)
    return ConfigError(key, message, fix or "see config.example.toml for the accepted values")


def _key_path(loc: tuple, data: dict) -> str:
    """('feeds', 2, 'url') -> 'feeds[2] (name = "blog").url', so the user can find the place."""
    parts: list[str] = []
    node: Any = data
    for part in loc:
        if isinstance(part, int):
            label = f"[{part}]"
            item = node[part] if isinstance(node, list) and part < len(node) else None
            if isinstance(item, dict) and "name" in item:
                label += f" (name = {item['name']!r})"
            parts.append(label)
            node = item
        else:
            parts.append(f".{part}" if parts else str(part))
            node = node.get(part) if isinstance(node, dict) else None
    return "".join(parts)


def _check_references(config: Config) -> None:
    names = set()
    for index, feed in enumerate(config.feeds):
        where = f"feeds[{index}] (name = {feed.name!r})"
        if feed.name in names:
            raise ConfigError(f"{where}.name", f"the name {feed.name!r} is used by another feed", "give every feed a unique name")
        names.add(feed.name)
        _check_url(f"{where}.url", feed.url, "give the feed's full URL, like https://example.com/feed.xml")
        for account in feed.accounts:
            if account not in config.accounts:
                known = ", ".join(sorted(config.accounts)) or "none defined"
                raise ConfigError(
                    f"{where}.accounts",
                    f"names the account {account!r}, which is not defined",
                    f"add an [accounts.{account}] table or use one of: {known}",
                )
        for account in feed.overrides:
            if account not in feed.accounts:
                raise ConfigError(
                    f"{where}.overrides.{account}",
                    "overrides an account this feed does not post to",
                    f"add {account!r} to the feed's accounts or remove the override",
                )
        _check_templates(where, feed)
        for account, options in feed.overrides.items():
            _check_templates(f"{where}.overrides.{account}", options)
    for name, account in config.accounts.items():
        if not _NAME.fullmatch(name):
            # the name is also a file name ($CREDENTIALS_DIRECTORY/NAME) and shows in logs and status
            raise ConfigError(f"accounts.{name!r}", "is not a usable account name",
                              "use letters, digits, '.', '_' and '-', starting with a letter or digit")
        _check_templates(f"accounts.{name}", account)


def _check_url(key: str, url: str, fix: str) -> None:
    if not is_http_url(url):
        raise ConfigError(key, f"{url!r} is not an http(s) URL", fix)


_WHITESPACE = re.compile(r"\s")  # what str.isspace() calls whitespace


def is_http_url(url: str) -> bool:
    """An absolute http(s) URL with a host and a valid port, without spaces."""
    try:
        parts = urlsplit(url)
        return (parts.scheme in ("http", "https") and bool(parts.hostname) and not _WHITESPACE.search(url)
                and (parts.port is None or parts.port > 0))  # .port raises ValueError when out of range
    except ValueError:
        return False


def _check_templates(where: str, options: PostOptions) -> None:
    for name in ("template", "template_untitled"):
        template = getattr(options, name)
        if template is None:
            continue
        try:
            _printable(template.replace("\n", " ").replace("\t", " "))  # line breaks are a template's own
        except SettingError:
            raise ConfigError(f"{where}.{name}", "contains control characters other than line breaks",
                              "remove them (NUL, escape sequences...); line breaks (\\n) and tabs are fine") from None
        try:
            fields = [parsed[1] for parsed in string.Formatter().parse(template) if parsed[1] is not None]
        except ValueError as exc:
            raise ConfigError(f"{where}.{name}", f"is not a valid template: {exc}", "write fields as {title}; double a literal brace: {{") from None
        for field_name in fields:
            if field_name not in TEMPLATE_FIELDS:
                allowed = " ".join("{" + f + "}" for f in sorted(TEMPLATE_FIELDS))
                raise ConfigError(f"{where}.{name}", f"uses the unknown field {{{field_name}}}", f"use only {allowed}")


def _expand(value: str, config_path: Path | None) -> Path:
    """Expand ~ and $VARS; a relative path is taken relative to the config file's folder."""
    path = Path(os.path.expandvars(os.path.expanduser(value)))
    if not path.is_absolute() and config_path is not None:
        path = config_path.parent / path
    return path


# --- credentials -----------------------------------------------------------------------------------------

MAX_SECRET_BYTES = 64 * 1024  # tokens are ~50 bytes; a bigger file is the wrong file


class Secret:
    """A secret value that does not show itself in repr(), str() or logs."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def reveal(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return "Secret('***')"

    __str__ = __repr__


def _known_secret(value: str) -> Secret:
    register_secret(value)  # from now on redacted from every log line, stored error and shown text
    if "://" in value:
        register_url_secrets(value)  # a URL's password, token or topic, wherever it is quoted alone
    return Secret(value)


def resolve_secret(config: Config, account_name: str) -> Secret:
    """The account's credential: its { env } or { file } reference, else $CREDENTIALS_DIRECTORY/<account name>."""
    from bridge.platforms import platform

    kind = platform(config.accounts[account_name].type)
    return resolve_secret_field(config, account_name, kind.credential, kind.credential_noun, account_name)


def resolve_secret_field(config: Config, account_name: str, key_name: str, noun: str, credential_name: str) -> Secret:
    """A secret field of an account (its credential, or another such as Threads' app_secret): its { env } or
    { file } reference, else $CREDENTIALS_DIRECTORY/<credential_name>."""
    account = config.accounts[account_name]
    key = f"accounts.{account_name}.{key_name}"
    found = resolve_secret_ref(config, key, getattr(account, key_name), credential_name)
    if found is not None:
        return found
    raise ConfigError(
        key,
        f"no {noun} for account {account_name!r}",
        f'add {key_name} = {{ env = "VARIABLE" }} or {key_name} = {{ file = "/path" }}, '
        f"or load a systemd credential named {credential_name!r} (LoadCredential={credential_name}:/path)",
    )


def resolve_secret_ref(config: Config, key: str, ref: SecretRef | None, credential_name: str) -> Secret | None:
    """A secret from its { env } or { file } reference, else $CREDENTIALS_DIRECTORY/<credential_name>; None when
    none of them is there. `key` names the setting in errors. Registered for redaction."""
    if ref is not None and ref.env:
        value = (os.environ.get(ref.env) or "").strip()
        if not value:
            raise ConfigError(key, f"the environment variable {ref.env} is not set or empty", f"export {ref.env}=... before starting bridge")
        return _known_secret(_one_line(key, value, f"the environment variable {ref.env}", f"export {ref.env} with the credential alone"))
    if ref is not None and ref.file:
        return _known_secret(_read_secret_file(key, _expand(ref.file, config.path)))
    credentials_dir = os.environ.get("CREDENTIALS_DIRECTORY")
    if credentials_dir:
        candidate = Path(credentials_dir) / credential_name
        if candidate.exists():
            return _known_secret(_read_secret_file(key, candidate))
    return None


# systemd credentials found without a reference in the config (LoadCredential=NAME:/path).
ALERT_DESTINATION_CREDENTIAL = "alert_destination"
PING_URL_CREDENTIAL = "ping_url"
DATABASE_CREDENTIAL = "database"


def resolve_url(config: Config, key: str, value: "str | SecretRef | None", credential_name: str) -> Secret | None:
    """An [alerts] URL (a destination or the ping URL): written in the config, or a { env } / { file } reference,
    else $CREDENTIALS_DIRECTORY/<credential_name>; None when there is none. A URL written in the config is a
    credential too (an ntfy topic, a healthchecks.io UUID): it is registered for redaction all the same."""
    if isinstance(value, str):
        return _known_secret(value)
    return resolve_secret_ref(config, key, value, credential_name)


def _read_secret_file(key: str, path: Path) -> str:
    """The file's text, stripped. Its content is never quoted in an error: it may be the secret."""
    try:
        with path.open("rb") as handle:
            data = handle.read(MAX_SECRET_BYTES + 1)
    except FileNotFoundError:
        raise ConfigError(key, f"the secret file {path} does not exist", "create it (chmod 600) or fix the path") from None
    except OSError as exc:
        raise ConfigError(key, f"cannot read the secret file {path}: {exc.strerror}", "check its permissions") from None
    fix = f"put only the credential in {path}, as plain text on one line (printf '%s' 'CREDENTIAL' > {path})"
    if len(data) > MAX_SECRET_BYTES:
        raise ConfigError(key, f"the secret file {path} is larger than {MAX_SECRET_BYTES} bytes, too large for a credential", fix)
    try:
        value = data.decode("utf-8").strip()
    except UnicodeDecodeError:
        value = None
    if value is None or "\0" in value:
        raise ConfigError(key, f"the secret file {path} is not text (binary data, or not UTF-8)", fix)
    if not value:
        raise ConfigError(key, f"the secret file {path} is empty", "put the credential in it")
    return _one_line(key, value, f"the secret file {path}", fix)


def _one_line(key: str, value: str, where: str, fix: str) -> str:
    """A credential goes into an HTTP header or a login body: a control character inside it breaks both."""
    if any(ord(char) < 32 or ord(char) == 127 for char in value):
        raise ConfigError(key, f"{where} holds control characters (a line break inside the credential?)", fix)
    return value


def world_readable_secret_files(config: Config) -> list[Path]:
    """Secret files that other users can read: worth a warning."""
    from bridge.platforms import platform

    found = []
    refs = [getattr(account, platform(account.type).credential) for account in config.accounts.values()]
    for ref in refs + [config.bridge.http_token]:
        if ref is not None and ref.file:
            path = _expand(ref.file, config.path)
            try:
                if path.stat().st_mode & 0o077:
                    found.append(path)
            except OSError:
                pass
    return found
