"""Git's bodies (wire/git.py) against the golden files in tests/golden/git/, and what a push
body refuses before any git runs."""

import inspect
import json
from pathlib import Path

import pytest
from pydantic import BaseModel, ValidationError

from wire import git

GOLDEN = Path(__file__).resolve().parents[1] / "golden" / "git"
FILES = sorted(GOLDEN.glob("*.json"))
MODELS = {
    name: model
    for name, model in inspect.getmembers(git, inspect.isclass)
    if issubclass(model, BaseModel) and model.__module__ == git.__name__
}


@pytest.mark.parametrize("path", FILES, ids=lambda f: f.stem)
def test_golden_bodies_round_trip(path: Path) -> None:
    golden = json.loads(path.read_text())
    model = MODELS[golden["model"]]
    body = model.model_validate_json(json.dumps(golden["body"]))
    assert json.loads(body.model_dump_json()) == golden["body"]
    assert golden["description"]


def test_every_body_has_a_golden_file() -> None:
    assert {json.loads(f.read_text())["model"] for f in FILES} == set(MODELS)


def push(**changes: object) -> dict[str, object]:
    return {**json.loads((GOLDEN / "git-push.json").read_text())["body"], **changes}


@pytest.mark.parametrize(
    ("field", "value", "says"),
    [
        ("branch", "refs/heads/main", "without refs/"),
        ("branch", "sam/a..b", "'..'"),
        ("branch", "sam/with space", "not allowed"),
        ("branch", "-f", "option"),
        ("message", " \n ", "empty"),
        ("remote_url", "ext::sh%20-c%20id", "not an https"),
        ("remote_url", "http://example.com/o/r.git", "plain http"),
        ("token", "", "at least 1"),
        ("author_email", "", "at least 1"),
        ("force", True, "Extra inputs"),
    ],
)
def test_a_push_body_refuses(field: str, value: object, says: str) -> None:
    with pytest.raises(ValidationError, match=says):
        git.GitPush.model_validate(push(**{field: value}))


def test_the_token_is_never_in_a_repr() -> None:
    body = git.GitPush.model_validate(push())
    assert body.token not in repr(body)
    token = git.GitToken.model_validate(json.loads((GOLDEN / "git-token.json").read_text())["body"])
    assert token.password not in repr(token)
