"""The terminal wire frames against the golden files the SPA's tests load too."""

import base64
import json
from pathlib import Path

import pytest

from tests.support.golden import (
    GOLDEN,
    assert_round_trips,
    directions_and_types,
    frame_types,
    golden_files,
)
from wire import terminal as p

FILES = golden_files("terminal")
JSON_FILES = [f for f in FILES if "frame" in json.loads(f.read_text())]
BINARY_FILES = [f for f in FILES if "binary" in json.loads(f.read_text())]
DIRECTIONS = {"client_to_server": p.CLIENT_FRAMES, "server_to_client": p.SERVER_FRAMES}


@pytest.mark.parametrize("path", JSON_FILES, ids=lambda f: f.stem)
def test_json_golden_frames_round_trip(path: Path) -> None:
    assert_round_trips(path, DIRECTIONS)


def test_every_frame_type_has_a_golden_file() -> None:
    expected = {("client_to_server", t) for t in frame_types(p.ClientFrame)} | {
        ("server_to_client", t) for t in frame_types(p.ServerFrame)
    }
    assert directions_and_types(JSON_FILES) == expected


@pytest.mark.parametrize("path", BINARY_FILES, ids=lambda f: f.stem)
def test_binary_golden_frames_round_trip(path: Path) -> None:
    golden = json.loads(path.read_text())
    raw = bytes.fromhex(golden["binary"]["hex"])
    assert base64.b64decode(golden["binary"]["base64"]) == raw
    fields = golden["fields"]
    data = bytes.fromhex(fields["data_hex"])
    if fields["kind"] == "output":
        assert p.decode_output(raw) == (fields["session_id"], fields["offset"], data)
        assert p.encode_output(fields["session_id"], fields["offset"], data) == raw
    else:
        assert p.decode_input(raw) == (fields["session_id"], data)
        assert p.encode_input(fields["session_id"], data) == raw


def test_split_utf8_golden_frames_join_into_whole_characters() -> None:
    parts = [
        json.loads((GOLDEN / "terminal" / f"binary-output-utf8-split-{n}.json").read_text())
        for n in (1, 2)
    ]
    frames = [p.decode_output(bytes.fromhex(part["binary"]["hex"])) for part in parts]
    assert frames[0][1] + len(frames[0][2]) == frames[1][1]  # contiguous offsets
    with pytest.raises(UnicodeDecodeError):
        frames[0][2].decode()
    assert (frames[0][2] + frames[1][2]).decode() == "price: € 3\r\n"


@pytest.mark.parametrize(
    "text",
    [
        "not json",
        "[]",
        '{"type": "nope"}',
        '{"type": "attach"}',
        '{"type": "attach", "session_id": "../etc"}',
        '{"type": "attach", "session_id": "a", "offset": -1}',
        '{"type": "resize", "session_id": "a", "cols": "80", "rows": 24}',
        '{"type": "rename", "session_id": "a", "name": "\\u001b]0;pwned\\u0007"}',
        '{"type": "rename", "session_id": "a", "name": ""}',
        '{"type": "list", "extra": 1}',
    ],
)
def test_malformed_client_frames_raise_frame_error(text: str) -> None:
    with pytest.raises(p.FrameError):
        p.parse_client_frame(text)


@pytest.mark.parametrize(
    "raw",
    [
        b"",
        b"\x02",
        b"\x01\x01a",  # an output frame sent by a client
        b"\x02\x00",
        b"\x02\x05abc",
        b"\x02\x03a/c",
        b"\x02\x02\xff\xfe",
    ],
)
def test_malformed_input_frames_raise_frame_error(raw: bytes) -> None:
    with pytest.raises(p.FrameError):
        p.decode_input(raw)


def test_output_frame_too_short_for_its_offset() -> None:
    with pytest.raises(p.FrameError):
        p.decode_output(b"\x01\x01a\x00\x00")
