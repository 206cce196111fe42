"""The Threads fake against Meta's reference examples (tests/threads_fake/reference_examples.json, each with its
source page), and bridge's own requests against the parameters the reference documents.

1. Every example request is replayed against the fake; its answer must have the example's shape: the same keys
   (none missing but those the reference calls optional, none added), the same JSON types, the same nesting.
2. bridge is driven through everything it does on Threads -- login, publish, a lost answer settled, the quota,
   a refresh -- and every request it made must match an example's endpoint, send only documented parameters,
   all required ones, and documented values.
3. A planted mutation in the fake (an answer reshaped) is caught by the same comparison.
"""

from __future__ import annotations

import json
import re
import time
from pathlib import Path

import httpx
import pytest
from click.testing import CliRunner

from bridge.config import Secret
from bridge.errors import TransientPublishError
from bridge.platforms.threads.reactions import gather
from bridge.reactions.gatherer import HttpOptions
from bridge.platforms.threads.account import ThreadsAccount
from bridge.platforms.threads.login import threads as login_command
from bridge.platforms.threads.target import ThreadsTarget
from bridge.platforms.threads.tokens import DAY
from bridge.state import State
from tests.test_threads import Clock, entry, payload_for, queued
from tests.threads_fake import ThreadsFake

EXAMPLES = json.loads((Path(__file__).parent / "threads_fake" / "reference_examples.json").read_text())["examples"]
START = 1697457600.0  # 2023-10-16 12:00 UTC: the list example's since/until select the fake's posts


def shape_mismatches(reference, answer, optional=(), where="") -> list[str]:
    """How `answer` differs in shape from `reference` (keys, JSON types, nesting); [] when it does not."""
    if isinstance(reference, dict):
        if not isinstance(answer, dict):
            return [f"{where or 'answer'}: an object expected, got {type(answer).__name__}"]
        problems = [f"{where}.{key}: missing" for key in reference if key not in answer and key not in optional]
        problems += [f"{where}.{key}: not in the reference" for key in answer if key not in reference]
        for key in reference.keys() & answer.keys():
            problems += shape_mismatches(reference[key], answer[key], optional, f"{where}.{key}")
        return problems
    if isinstance(reference, list):
        if not isinstance(answer, list):
            return [f"{where}: a list expected, got {type(answer).__name__}"]
        if reference and not answer:
            return [f"{where}: empty, the reference has items"]
        return [problem for item in answer for problem in shape_mismatches(reference[0], item, optional, f"{where}[]")]
    kind = lambda value: "number" if isinstance(value, (int, float)) and not isinstance(value, bool) else type(value).__name__
    return [] if kind(reference) == kind(answer) else [f"{where}: {kind(reference)} expected, got {kind(answer)}"]


class Session:
    """The placeholders of the examples, made real on a fake."""

    def __init__(self, fake: ThreadsFake, clock: Clock) -> None:
        self.fake, self.clock = fake, clock
        token = fake.add_user("threadsapitestuser", issued_at=clock() - 2 * DAY)
        user_id = fake.tokens[token].user_id
        http = httpx.Client(base_url=fake.url)
        # (the setup reads the one value of an answer: a mutation that renames a key must reach the comparison)
        created = lambda **params: next(iter(http.post(f"/v1.0/{user_id}/threads", data={**params, "access_token": token}
                                                      ).json().values()))
        container = created(media_type="TEXT", text="Today Is Monday")
        media = http.post(f"/v1.0/{user_id}/threads_publish", data={"creation_id": container,
                                                                     "access_token": token}).json()["id"]
        # the conversation examples list replies, one nested and one hidden: people answer the post
        first = fake.reply("replier", media, "First Reply")
        fake.hide(fake.reply("other", media, "Second Reply"))
        fake.reply("third", media, "Third Reply")
        fake.reply("nester", first, "Nested Reply")
        fake.like(media, 3)
        failed = created(media_type="IMAGE", image_url="http://127.0.0.1/x.jpg")
        fresh = created(media_type="TEXT", text="unpublished")
        # the delete example's post: one of its own, so the other examples keep theirs
        doomed = http.post(f"/v1.0/{user_id}/threads_publish", data={"creation_id": created(media_type="TEXT", text="Oops"),
                                                                      "access_token": token}).json()["id"]
        revoked = fake.issue(user_id, "long")
        fake.revoke(revoked)
        self.values = {
            "<ACCESS_TOKEN>": token, "<THREADS_ACCESS_TOKEN>": token, "<LONG_LIVED_ACCESS_TOKEN>": token,
            "<THREADS_USER_ID>": user_id, "<MEDIA_CONTAINER_ID>": fresh, "<FAILED_CONTAINER_ID>": failed,
            "<THREADS_MEDIA_ID>": media, "<MEDIA_ID>": media, "<THREADS_APP_ID>": fake.APP_ID, "<THREADS_APP_SECRET>": fake.APP_SECRET,
            "<SHORT_LIVED_ACCESS_TOKEN>": fake.issue(user_id, "short"), "<CODE>": fake.authorization_code(user_id),
            "<REVOKED_TOKEN>": revoked,
        }
        self.doomed = doomed
        self.http = http

    def fill(self, text: str, values: dict | None = None) -> str:
        for placeholder, value in (values or self.values).items():
            text = text.replace(placeholder, value)
        return text

    def replay(self, example: dict) -> tuple[int, object]:
        request = example["request"]
        values = {**self.values, "<THREADS_MEDIA_ID>": self.doomed} if request["method"] == "DELETE" else None
        path = self.fill(request["path"], values)
        params = {key: self.fill(value, values) for key, value in request["params"].items()}
        if request["method"] == "GET":
            response = self.http.get(path, params=params)
        elif request["method"] == "DELETE":
            response = self.http.delete(path, params=params)
        else:
            response = self.http.post(path, data=params)
        return response.status_code, response.json()


def replay_all(fake: ThreadsFake) -> dict[str, list[str]]:
    clock = fake.clock
    session = Session(fake, clock)
    found = {}
    for example in EXAMPLES:
        status, answer = session.replay(example)
        problems = shape_mismatches(example["response"], answer, tuple(example.get("optional_keys", ())))
        if "error" not in example["response"] and status != 200:
            problems.append(f"HTTP {status}: {answer}")
        found[example["name"]] = problems
    return found


@pytest.fixture
def fake():
    with ThreadsFake(clock=Clock(START)) as server:
        yield server


def test_every_reference_example_is_answered_in_its_shape(fake):
    found = replay_all(fake)
    assert len(found) == len(EXAMPLES) >= 17
    assert {name: problems for name, problems in found.items() if problems} == {}


@pytest.mark.parametrize("mutation, endpoint", [
    ("publishing-limit-flat", "the publishing limit"),
    ("create-renamed-id", "create a media container"),
    ("replied-to-flat", "a thread's conversation"),
    ("insights-bare-value", "a post's insights"),
])
def test_a_planted_mutation_in_the_fake_is_caught(mutation, endpoint):
    with ThreadsFake(clock=Clock(START), mutation=mutation) as mutated:
        found = replay_all(mutated)
    assert found[endpoint], f"the {mutation} mutation went unnoticed"


def _endpoint(example: dict) -> re.Pattern:
    paths = [example["request"]["path"]] + ([example["path_also"]] if example.get("path_also") else [])
    return re.compile("|".join(re.sub(r"<[A-Z_]+>", r"\\d+", re.escape(path).replace(r"\<", "<").replace(r"\>", ">"))
                               for path in paths))


def request_problems(method: str, path: str, params: dict) -> list[str]:
    """[] when some example's endpoint takes this request as bridge sent it."""
    candidates = [example for example in EXAMPLES
                  if example["request"]["method"] == method and _endpoint(example).fullmatch(path)]
    if not candidates:
        return [f"{method} {path}: no reference example for this endpoint"]
    best = None
    for example in candidates:
        problems = [f"{name} not documented" for name in params if name not in example["documented"]]
        problems += [f"{name} required but not sent" for name in example["required"] if name not in params]
        problems += [f"{name}={params[name]!r} not a documented value" for name, allowed in example.get("values", {}).items()
                     if name in params and params[name] not in allowed]
        if "field_values" in example and "fields" in params:
            problems += [f"field {field} not documented" for field in params["fields"].split(",")
                         if field not in example["field_values"]]
        if not problems:
            return []
        best = best or [f"{method} {path}: " + "; ".join(problems)]
    return best


def test_every_request_bridge_makes_is_one_the_reference_documents(fake, tmp_path, monkeypatch):
    clock = fake.clock
    # login: code -> short-lived -> long-lived
    user_token = fake.add_user("writer", issued_at=clock())
    user_id = fake.tokens[user_token].user_id
    monkeypatch.setenv("THREADS_APP_SECRET", fake.APP_SECRET)
    result = CliRunner().invoke(login_command, ["--app-id", fake.APP_ID, "--print", "--graph-url", fake.url],
                                input=f"https://localhost/?code={fake.authorization_code(user_id)}#_\n")
    assert result.exit_code == 0, result.output
    token = next(line for line in result.output.splitlines() if line.startswith("TH"))
    # publish (text and image), a lost answer settled, the quota read, a refresh a day later
    state = State.open_memory()
    settings = ThreadsAccount.model_validate({"type": "threads", "access_token": {"env": "T"}, "graph_url": fake.url})
    target = ThreadsTarget("threads", settings, token, state, clock=clock)
    first = queued(state, entry(1), clock)
    published = target.publish(first, payload_for(entry(1)))
    state.mark_posted(first.id, published.remote_id, published.url, clock())
    delivery = queued(state, entry(2), clock)
    fake.inject("POST /v1.0/{user}/threads_publish", "lost")
    with pytest.raises(TransientPublishError):
        target.publish(delivery, payload_for(entry(2)))
    assert target.find_existing(delivery) is not None
    clock.now += DAY + 60
    image = {"media_type": "IMAGE", "text": "A photo https://blog.example.com/p", "image_url": "https://cdn.example.com/a.jpg",
             "alt_text": "A bridge", "link_attachment": None}
    target.publish(queued(state, entry(3), clock), image)
    target.diagnose()
    # the way back: the first post's replies and counts, read as `bridge reactions refresh` reads them
    posted = state.get_delivery(first.id)
    fake.reply("replier", posted.remote_id, "hello")
    thread = gather(settings, Secret(token), posted, deadline=time.monotonic() + 30, http=HttpOptions("bridge-test"))
    assert [reply.text for reply in thread.replies] == ["hello"]
    # deletes that follow the blog: the third post deleted; deleting it again counts as done
    third = queued(state, entry(4), clock)
    state.mark_posted(third.id, target.publish(third, payload_for(entry(4))).remote_id, None, clock())
    assert any(post["text"] == payload_for(entry(4))["text"] for post in fake.posts(token))
    target.delete(state.get_delivery(third.id))
    target.delete(state.get_delivery(third.id))
    assert all(post["text"] != payload_for(entry(4))["text"] for post in fake.posts(token))
    made = [(method, path, params) for method, path, params in fake.requests]
    endpoints = {method + " " + re.sub(r"/\d+", "/{id}", path) for method, path, _ in made}
    assert {"POST /oauth/access_token", "GET /access_token", "GET /refresh_access_token", "GET /v1.0/me",
            "POST /v1.0/{id}/threads", "POST /v1.0/{id}/threads_publish", "GET /v1.0/{id}",
            "GET /v1.0/{id}/threads", "GET /v1.0/{id}/threads_publishing_limit", "GET /v1.0/{id}/conversation",
            "GET /v1.0/{id}/insights", "DELETE /v1.0/{id}"} <= endpoints
    problems = [problem for method, path, params in made for problem in request_problems(method, path, params)]
    assert problems == []


def test_the_request_check_refuses_what_the_reference_does_not_document():
    sent = {"media_type": "TEXT", "text": "x", "access_token": "t"}
    assert request_problems("POST", "/v1.0/123/threads", sent) == []
    assert request_problems("POST", "/v1.0/123/threads", {**sent, "topic_tag": "a"})  # not in the reference read
    assert request_problems("POST", "/v1.0/123/threads", {**sent, "media_type": "TEXT_POST"})  # not a value it takes
    assert request_problems("POST", "/v1.0/123/threads_publish", {"access_token": "t"})  # creation_id missing
    assert request_problems("GET", "/v1.0/123/likes", {"access_token": "t"})  # an endpoint bridge has no example of
    assert request_problems("GET", "/v1.0/123/conversation", {"access_token": "t", "fields": "id,avatar_url"})
    assert request_problems("GET", "/v1.0/123/insights", {"access_token": "t"})  # metric missing
    assert request_problems("GET", "/refresh_access_token", {"grant_type": "ig_refresh_token", "access_token": "t"})
