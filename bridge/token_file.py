"""Writing a credential that `bridge login` obtained to the file an account's `token_file` names: created 0600,
replaced atomically and only with --force. Shared by every platform's login command."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import click


def write_private(path: Path, token: str, *, force: bool) -> None:
    """Write the token to a file created 0600; an existing file is replaced (atomically) only with force."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    data = (token + "\n").encode()
    if not force:
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            raise click.BadParameter(f"{path} exists; pass --force to replace it", param_hint="--write-token") from None
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
        return
    fd, temporary = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)  # mkstemp creates it 0600
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
