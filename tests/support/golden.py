"""The golden JSON frames the agent's wire modules and the SPA's tests share
(tests/golden/<protocol>/*.json): `{"direction", "description", "frame"}` each."""

import json
import typing
from pathlib import Path
from typing import Any

from pydantic import TypeAdapter

GOLDEN = Path(__file__).resolve().parents[1] / "golden"


def golden_files(protocol: str) -> list[Path]:
    return sorted((GOLDEN / protocol).glob("*.json"))


def frame_types(declared: object) -> set[str]:
    """The `type` of every model in a (nested, Annotated) union of frames."""
    if isinstance(declared, type):
        return {declared.model_fields["type"].annotation.__args__[0]}
    if typing.get_origin(declared) is typing.Annotated:
        return frame_types(typing.get_args(declared)[0])
    return set().union(*(frame_types(member) for member in typing.get_args(declared)))


def assert_round_trips(path: Path, directions: dict[str, TypeAdapter[Any]]) -> None:
    """The golden frame parses as its direction's frames and serialises back unchanged."""
    golden = json.loads(path.read_text())
    adapter = directions[golden["direction"]]
    frame = adapter.validate_json(json.dumps(golden["frame"]))
    assert json.loads(adapter.dump_json(frame)) == golden["frame"]
    assert golden["description"]


def directions_and_types(paths: list[Path]) -> set[tuple[str, str]]:
    """(direction, frame type) of each golden frame."""
    goldens = [json.loads(path.read_text()) for path in paths]
    return {(golden["direction"], golden["frame"]["type"]) for golden in goldens}
