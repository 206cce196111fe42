"""A Nostr account's [accounts.NAME] table: where its secret key lives, its relays, and what it publishes."""

from __future__ import annotations

from typing import Annotated, ClassVar, Literal
from urllib.parse import urlsplit

from pydantic import AfterValidator, Field, model_validator

from bridge.addresses import LOOPBACK, parse
from bridge.config import AccountConfig, SecretRef, SettingError, _count

MAX_RELAYS = 50


def _relay_url(value: str) -> str:
    """wss://host[:port][/path]; ws:// only for this machine (a test relay): an unencrypted relay elsewhere would let
    anyone on the path read and drop the events."""
    fix = 'write it like "wss://relay.example.com" (ws:// only for a relay on 127.0.0.1 or ::1)'
    try:
        parts = urlsplit(value)
        host = parts.hostname or ""
        port_ok = parts.port is None or parts.port > 0
    except ValueError:
        host, port_ok, parts = "", False, None
    if parts is None or parts.scheme not in ("ws", "wss") or not host or not port_ok or any(c.isspace() for c in value):
        raise SettingError(f"{value!r} is not a relay URL", fix)
    ip = parse(host)
    if parts.scheme == "ws" and not (ip is not None and any(ip in net for net in LOOPBACK if net.version == ip.version)):
        raise SettingError(f"{value!r} is an unencrypted relay (ws://) on another machine", fix)
    return value


RelayUrl = Annotated[str, AfterValidator(_relay_url)]


class NostrAccount(AccountConfig):
    type: Literal["nostr"]
    secret_key: SecretRef | None = None  # nsec1... or 64 hex characters
    relays: list[RelayUrl] = Field(min_length=1, max_length=MAX_RELAYS)
    # A post is made when at least this many relays accepted every event of it.
    min_relays: _count(1, MAX_RELAYS) = 1
    # Also publish the whole article as a NIP-23 long-form event, replaced in place when the entry is edited.
    long_form: bool = False

    @model_validator(mode="before")
    @classmethod
    def _edits_follow_long_form(cls, data):
        # An article is replaceable: with long_form, an edited entry replaces it unless edit_on_update says no.
        if isinstance(data, dict) and data.get("long_form") is True and "edit_on_update" not in data:
            data = {**data, "edit_on_update": True}
        return data

    @model_validator(mode="after")
    def _fields_for_nostr(self) -> "NostrAccount":
        if len(set(self.relays)) != len(self.relays):
            raise ValueError("relays lists a relay twice; list each once")
        if self.min_relays > len(self.relays):
            raise ValueError(f"min_relays = {self.min_relays} but only {len(self.relays)} relay(s) are listed; "
                             "lower min_relays or add relays")
        if self.edit_on_update and not self.long_form:
            raise ValueError("edit_on_update on a nostr account replaces the long-form article; a note cannot be "
                             "edited: set long_form = true, or remove edit_on_update")
        return self

    server_key: ClassVar[str] = "relays"

    @property
    def server_url(self) -> str:
        """The first relay's address over HTTP(S), where its NIP-11 document and its clock are read."""
        from bridge.platforms.nostr.relays import information_url

        return information_url(self.relays[0])
