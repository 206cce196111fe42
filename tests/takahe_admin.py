"""Takahē's side of tests/takahe_fixture.py: accounts, tokens and settings made through Takahē's own models.

Runs in Takahē's venv with its checkout as the working directory (never imported by bridge's tests). One
process for the whole session, so each command costs a database round trip, not a Django start-up: it reads
one JSON command per line on stdin, answers one JSON line on stdout, and exits at end of input (so it ends
when the test process dies).
"""

from __future__ import annotations

import json
import os
import sys
import traceback

sys.path.insert(0, os.getcwd())
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "takahe.settings")

import django  # noqa: E402

django.setup()

from django.utils import timezone  # noqa: E402

from api.models import Application, Token  # noqa: E402
from core.models import Config  # noqa: E402
from users.models import Domain, User  # noqa: E402
from users.services import IdentityService  # noqa: E402

APP_NAME = "bridge tests"


def setup(domain: str) -> dict:
    Domain.objects.get_or_create(domain=domain, defaults={"local": True, "default": True, "public": True})
    return {}


def create_account(domain: str, username: str, email: str, password: str) -> dict:
    user = User.objects.create_superuser(email=email, password=password)
    identity = IdentityService.create(
        user=user, username=username, domain=Domain.objects.get(domain=domain), name=username
    )
    return {"account_id": str(identity.pk)}


def create_token(username: str, scopes: list[str], token: str) -> dict:
    user = User.objects.get(identities__username=username)
    identity = user.identities.get(username=username)
    application = Application.objects.filter(name=APP_NAME).first() or Application.create(
        client_name=APP_NAME, redirect_uris="urn:ietf:wg:oauth:2.0:oob", website=None, scopes=" ".join(scopes)
    )
    Token.objects.create(application=application, user=user, identity=identity, token=token, scopes=scopes)
    return {}


def revoke_token(token: str) -> dict:
    """What the writer does in Takahē's settings: the token stops working (its API then answers 401)."""
    Token.objects.filter(token=token).update(revoked=timezone.now())
    return {}


def set_system(key: str, value) -> dict:
    Config.set_system(key, value)
    return {}


COMMANDS = {"setup": setup, "create_account": create_account, "create_token": create_token, "set_system": set_system,
            "revoke_token": revoke_token}


def main() -> None:
    print(json.dumps({"ready": True}), flush=True)
    for line in sys.stdin:
        if not line.strip():
            continue
        command = json.loads(line)
        try:
            answer = {"ok": True, **COMMANDS[command.pop("op")](**command)}
        except Exception as e:  # the test gets the reason, the process keeps serving
            answer = {"ok": False, "error": f"{type(e).__name__}: {e}", "traceback": traceback.format_exc()}
        print(json.dumps(answer), flush=True)


if __name__ == "__main__":
    main()
