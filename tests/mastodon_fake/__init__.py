"""A faithful fake Mastodon server for tests (loopback only).

See server.MastodonFake (in-process) and process.MastodonFakeProcess (a separate process,
``python -m tests.mastodon_fake --port 0``). The length rule is in length.status_length; how other
servers of Mastodon's API differ (``MastodonFake(profile="takahe")``, ``--profile takahe``) in profiles.py.
"""

from .app import tiny_png
from .length import status_length
from .process import MastodonFakeProcess
from .server import FAMILIES, MastodonFake
from .util import Clock

__all__ = ["MastodonFake", "MastodonFakeProcess", "Clock", "status_length", "tiny_png", "FAMILIES"]
