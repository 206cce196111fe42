"""Real Mastodon recordings for conformance tests, fetched at test time and cached.

The Mastodon.py 2.3.3 sdist on PyPI (MIT) contains ``tests/cassettes/*.yaml`` (VCR.py
recordings made against a Mastodon 4.7.3 server) and ``tests/test_status_length.py``
(ground-truth status lengths). We download it with pip into a cache outside the repo
(``$BRIDGE_TEST_CACHE`` or ``~/.cache/bridge-tests``) and never commit it.

To fetch it by hand::

    .venv/bin/pip download --no-binary :all: --no-deps mastodon-py==2.3.3 -d ~/.cache/bridge-tests
"""

from __future__ import annotations

import ast
import dataclasses
import hashlib
import os
import pathlib
import shutil
import subprocess
import sys
import tarfile
import tempfile
from typing import Any

MASTODON_PY_VERSION = "2.3.3"
SDIST_NAME = f"mastodon_py-{MASTODON_PY_VERSION}.tar.gz"
SDIST_SHA256 = "a3cda3db86d65809957c978aef8ac7fb3dfc93abfeda3f1c6bdef4c79090ab7b"
RECORDED_SERVER = "Mastodon 4.7.3"

HOW_TO_GET = (
    f"the Mastodon.py {MASTODON_PY_VERSION} sdist (real Mastodon recordings) is not available; "
    f"fetch it with: {sys.executable} -m pip download --no-binary :all: --no-deps "
    f"mastodon-py=={MASTODON_PY_VERSION} -d {{cache}}  (or set BRIDGE_TEST_CACHE to a directory holding {SDIST_NAME})"
)


class CassettesUnavailable(RuntimeError):
    pass


def cache_dir() -> pathlib.Path:
    base = os.environ.get("BRIDGE_TEST_CACHE")
    path = pathlib.Path(base).expanduser() if base else pathlib.Path.home() / ".cache" / "bridge-tests"
    return path


def _sha256(path: pathlib.Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def ensure_sdist(timeout: float = 600.0) -> pathlib.Path:
    """Path of the verified sdist, downloading it with pip when missing."""
    cache = cache_dir()
    cache.mkdir(parents=True, exist_ok=True)
    target = cache / SDIST_NAME
    if target.exists() and _sha256(target) == SDIST_SHA256:
        return target
    with tempfile.TemporaryDirectory(dir=cache) as tmp:
        cmd = [sys.executable, "-m", "pip", "download", "--no-binary", ":all:", "--no-deps",
               f"mastodon-py=={MASTODON_PY_VERSION}", "-d", tmp, "--disable-pip-version-check", "-q"]
        try:
            result = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
        except (OSError, subprocess.TimeoutExpired) as exc:
            raise CassettesUnavailable(f"pip download failed: {exc}; " + HOW_TO_GET.format(cache=cache)) from exc
        downloaded = pathlib.Path(tmp) / SDIST_NAME
        if result.returncode != 0 or not downloaded.exists():
            raise CassettesUnavailable(
                f"pip download failed ({result.returncode}): {result.stderr.strip()[-500:]}; " + HOW_TO_GET.format(cache=cache)
            )
        digest = _sha256(downloaded)
        if digest != SDIST_SHA256:
            raise CassettesUnavailable(f"{SDIST_NAME} has sha256 {digest}, expected {SDIST_SHA256}")
        os.replace(downloaded, target)
    return target


def extracted_dir() -> pathlib.Path:
    """Directory holding the sdist's tests/ (cassettes and test_status_length.py)."""
    sdist = ensure_sdist()
    out = cache_dir() / f"mastodon_py-{MASTODON_PY_VERSION}-tests"
    marker = out / ".complete"
    if marker.exists():
        return out
    tmp = pathlib.Path(tempfile.mkdtemp(dir=cache_dir(), prefix=".extract-"))
    try:
        with tarfile.open(sdist) as tar:
            prefix = f"mastodon_py-{MASTODON_PY_VERSION}/tests/"
            members = []
            for member in tar.getmembers():
                if not member.isfile() or not member.name.startswith(prefix):
                    continue
                rel = member.name[len(prefix):]
                if rel == "test_status_length.py" or (rel.startswith("cassettes") and rel.endswith(".yaml")):
                    if ".." in pathlib.PurePosixPath(rel).parts:
                        continue
                    member.name = rel
                    members.append(member)
            tar.extractall(tmp, members=members, filter="data")
        (tmp / ".complete").write_text(SDIST_SHA256)
        if out.exists():
            shutil.rmtree(out)
        os.replace(tmp, out)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    return out


@dataclasses.dataclass
class Interaction:
    method: str
    uri: str
    request_headers: dict[str, str]
    request_body: bytes | None
    status: int
    response_headers: dict[str, str]  # lowercase names
    response_body: bytes


@dataclasses.dataclass
class Cassette:
    name: str
    path: pathlib.Path
    interactions: list[Interaction]


def _first(value: Any) -> str:
    if isinstance(value, list):
        return str(value[0]) if value else ""
    return str(value)


def _as_bytes(value: Any) -> bytes | None:
    if value is None:
        return None
    if isinstance(value, bytes):
        return value
    if isinstance(value, dict) and "string" in value:
        return _as_bytes(value["string"])
    return str(value).encode("utf-8")


def load_cassette(path: pathlib.Path) -> Cassette | None:
    try:
        import yaml
    except ImportError as exc:  # pragma: no cover
        raise CassettesUnavailable("PyYAML is needed to read the recordings (pip install pyyaml)") from exc
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    with open(path, "rb") as fh:
        data = yaml.load(fh, Loader=loader)
    if not isinstance(data, dict) or "interactions" not in data:
        return None  # websocket recordings have another format
    interactions = []
    for item in data["interactions"]:
        rq, rs = item["request"], item["response"]
        interactions.append(
            Interaction(
                method=rq["method"].upper(),
                uri=rq["uri"],
                request_headers={k: _first(v) for k, v in (rq.get("headers") or {}).items()},
                request_body=_as_bytes(rq.get("body")),
                status=int(rs["status"]["code"]),
                response_headers={k.lower(): _first(v) for k, v in (rs.get("headers") or {}).items()},
                response_body=_as_bytes(rs.get("body")) or b"",
            )
        )
    return Cassette(path.stem, path, interactions)


def load_cassettes(subdir: str = "cassettes") -> list[Cassette]:
    root = extracted_dir() / subdir
    out = []
    for path in sorted(root.glob("*.yaml")):
        cassette = load_cassette(path)
        if cassette is not None:
            out.append(cassette)
    return out


def _literal(node: ast.AST) -> Any:
    """Evaluate the literal subset used by test_status_length.py (incl. ``1000 - 943``)."""
    if isinstance(node, ast.Constant):
        return node.value
    if isinstance(node, (ast.Tuple, ast.List)):
        return [_literal(e) for e in node.elts]
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub):
        return -_literal(node.operand)
    if isinstance(node, ast.BinOp) and isinstance(node.op, (ast.Add, ast.Sub)):
        left, right = _literal(node.left), _literal(node.right)
        return left + right if isinstance(node.op, ast.Add) else left - right
    raise ValueError(f"unexpected syntax in TEST_CASES: {ast.dump(node)[:200]}")


def load_length_pairs() -> list[tuple[str, int]]:
    """The (text, expected length) pairs of Mastodon.py's test_status_length.py."""
    source = (extracted_dir() / "test_status_length.py").read_text(encoding="utf-8")
    tree = ast.parse(source)
    for node in tree.body:
        if isinstance(node, ast.Assign) and any(isinstance(t, ast.Name) and t.id == "TEST_CASES" for t in node.targets):
            pairs = _literal(node.value)
            return [(str(text), int(expected)) for text, expected in pairs]
    raise ValueError("TEST_CASES not found in test_status_length.py")


def spoiler_offset() -> tuple[str, int] | None:
    """The spoiler used by the ground-truth test's second assertion ("what", +4), if unchanged."""
    source = (extracted_dir() / "test_status_length.py").read_text(encoding="utf-8")
    if 'get_status_length(text, "what") == expected + 4' in source:
        return ("what", 4)
    return None
