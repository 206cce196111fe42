"""Writing the files a site publishes: whole or not at all, and only when their content changed (a static site
generator watching the folder then rebuilds only for real changes)."""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
import tempfile
from pathlib import Path
from urllib.parse import urlsplit

from bridge.errors import BridgeError

PUBLISHED_MODE = 0o644  # read by the web server and the site generator; nothing secret is in them
_NOT_SLUG = re.compile(r"[^a-z0-9]+")
SLUG_LENGTH = 60


class PublishError(BridgeError):
    """A file the writer's site reads could not be written (a missing or read-only folder, a full disk)."""


def write_if_changed(path: Path, data: bytes) -> bool:
    """Atomically replace `path` with `data` unless it already holds exactly that; True when written."""
    try:
        try:
            if path.read_bytes() == data:
                return False
        except FileNotFoundError:
            pass
        path.parent.mkdir(parents=True, exist_ok=True)
        handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
        try:
            with os.fdopen(handle, "wb") as out:
                out.write(data)
                out.flush()
                os.fsync(out.fileno())
            os.chmod(temporary, PUBLISHED_MODE)
            os.replace(temporary, path)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(temporary)
            raise
    except OSError as exc:
        raise PublishError(f"cannot write {path}: {exc.strerror}; make sure {path.parent} is a folder bridge "
                           "may write to") from None
    return True


def document_name(permalink: str) -> str:
    """A safe file name (no extension) for a permalink's files: a readable slug of its host and path, and a
    hash of the whole permalink so that two permalinks never share a name. [a-z0-9-] only: no dots, slashes,
    or anything a web server or a shell would read."""
    parts = urlsplit(permalink)
    slug = _NOT_SLUG.sub("-", f"{parts.hostname or ''} {parts.path}".lower()).strip("-")[:SLUG_LENGTH].strip("-")
    digest = hashlib.sha256(permalink.encode("utf-8")).hexdigest()[:12]
    return f"{slug}-{digest}" if slug else digest
