"""The agent-session viewer frames against the golden files the SPA's tests load too."""

from pathlib import Path

import pytest

from tests.support.golden import (
    assert_round_trips,
    directions_and_types,
    frame_types,
    golden_files,
)
from wire import agent_session as w

FILES = golden_files("agent_session")
DIRECTIONS = {"client_to_server": w.CLIENT_FRAMES, "server_to_client": w.SERVER_FRAMES}


@pytest.mark.parametrize("path", FILES, ids=lambda f: f.stem)
def test_golden_frames_round_trip(path: Path) -> None:
    assert_round_trips(path, DIRECTIONS)


def test_every_frame_type_has_a_golden_file() -> None:
    expected = {("client_to_server", "answer_permission")} | {
        ("server_to_client", t) for t in frame_types(w.ServerFrame)
    }
    assert directions_and_types(FILES) == expected


def test_session_frames_need_a_seq() -> None:
    with pytest.raises(ValueError):
        w.SESSION_FRAMES.validate_python({"type": "stopped", "reason": "requested"})
