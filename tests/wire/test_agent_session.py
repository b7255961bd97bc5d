"""The agent-session viewer frames against the golden files the SPA's tests load too."""

import json
import typing
from pathlib import Path

import pytest

from wire import agent_session as w

GOLDEN = Path(__file__).resolve().parents[1] / "golden" / "agent_session"
FILES = sorted(GOLDEN.glob("*.json"))
DIRECTIONS = {"client_to_server": w.CLIENT_FRAMES, "server_to_client": w.SERVER_FRAMES}


def _types(declared: object) -> set[str]:
    """The `type` of every model in a (nested, Annotated) union."""
    if isinstance(declared, type):
        return {declared.model_fields["type"].annotation.__args__[0]}
    if typing.get_origin(declared) is typing.Annotated:
        return _types(typing.get_args(declared)[0])
    return set().union(*(_types(member) for member in typing.get_args(declared)))


@pytest.mark.parametrize("path", FILES, ids=lambda f: f.stem)
def test_golden_frames_round_trip(path: Path) -> None:
    golden = json.loads(path.read_text())
    adapter = DIRECTIONS[golden["direction"]]
    frame = adapter.validate_json(json.dumps(golden["frame"]))
    assert json.loads(adapter.dump_json(frame)) == golden["frame"]
    assert golden["description"]


def test_every_frame_type_has_a_golden_file() -> None:
    seen = {
        (json.loads(f.read_text())["direction"], json.loads(f.read_text())["frame"]["type"])
        for f in FILES
    }
    server = _types(w.ServerFrame) - {"started"} | {"started"}
    expected = {("client_to_server", "answer_permission")} | {
        ("server_to_client", t) for t in server
    }
    assert seen == expected


def test_session_frames_need_a_seq() -> None:
    with pytest.raises(ValueError):
        w.SESSION_FRAMES.validate_python({"type": "stopped", "reason": "requested"})
