"""The agent's HTTP bodies (wire/agent_api.py) against the golden files in
tests/golden/agent_api/, and the six lifecycle states both sides share."""

import inspect
import json
from pathlib import Path

import pytest
from pydantic import BaseModel, ValidationError

from wire import agent_api
from wire.states import LifecycleState

GOLDEN = Path(__file__).resolve().parents[1] / "golden" / "agent_api"
FILES = sorted(GOLDEN.glob("*.json"))
MODELS = {
    name: model
    for name, model in inspect.getmembers(agent_api, inspect.isclass)
    if issubclass(model, BaseModel)
    and model.__module__ == agent_api.__name__
    and not name.startswith("_")
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


def test_the_six_lifecycle_states_in_order() -> None:
    assert [str(state) for state in LifecycleState] == [
        "pending",
        "creating",
        "running",
        "stopping",
        "stopped",
        "error",
    ]


def test_a_reply_ignores_fields_a_newer_agent_adds() -> None:
    reported = agent_api.AgentWorkspace.model_validate({**_running(), "gpu": "none"})
    assert reported.state is LifecycleState.RUNNING


def test_a_request_refuses_unknown_fields_and_other_types() -> None:
    with pytest.raises(ValidationError, match="Extra inputs"):
        agent_api.NewWorkspace.model_validate({"id": "w1", "repository": "/r", "rm": 1})
    with pytest.raises(ValidationError):
        agent_api.NewWorkspace.model_validate({"id": 1, "repository": "/r"})
    with pytest.raises(ValidationError):
        agent_api.AgentWorkspace.model_validate({**_running(), "state": "sleeping"})


def _running() -> dict:
    return json.loads((GOLDEN / "workspace-running.json").read_text())["body"]
