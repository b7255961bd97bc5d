"""The project chat's viewer frames against the golden files the SPA's tests load too."""

import json
from pathlib import Path

import pytest

from tests.support.golden import (
    assert_round_trips,
    directions_and_types,
    frame_types,
    golden_files,
)
from wire import chat as w

FILES = golden_files("project_chat")
DIRECTIONS = {"server_to_client": w.VIEWER_FRAMES}


@pytest.mark.parametrize("path", FILES, ids=lambda f: f.stem)
def test_golden_frames_round_trip(path: Path) -> None:
    assert_round_trips(path, DIRECTIONS)


def test_every_viewer_frame_type_has_a_golden_file() -> None:
    expected = {("server_to_client", t) for t in frame_types(w.ViewerFrame)}
    assert directions_and_types(FILES) == expected


@pytest.mark.parametrize("path", FILES, ids=lambda f: f.stem)
def test_golden_messages_carry_the_role_their_frame_has(path: Path) -> None:
    frame = json.loads(path.read_text())["frame"]
    if frame["type"] == "message":
        message = frame["message"]
        assert w.role_of(message["frame"]) == message["role"]


def test_a_message_without_a_project_seq_is_refused() -> None:
    golden = json.loads((FILES[0].parent / "message-prompt.json").read_text())["frame"]
    del golden["message"]["seq"]
    with pytest.raises(ValueError):
        w.VIEWER_FRAMES.validate_python(golden)


def test_an_unknown_chat_status_is_refused() -> None:
    golden = json.loads((FILES[0].parent / "chat.json").read_text())["frame"]
    golden["chat"]["status"] = "sleeping"
    with pytest.raises(ValueError):
        w.VIEWER_FRAMES.validate_python(golden)
