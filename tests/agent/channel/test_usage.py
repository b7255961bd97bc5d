"""The usage meter on answers as the Messages API sends them, split anywhere, and on what a
broken or hostile upstream could send instead."""

import json

from agent.channel.usage import MAX_SSE_LINE_BYTES, UsageMeter

ZERO = {
    "input_tokens": 0,
    "output_tokens": 0,
    "cache_creation_input_tokens": 0,
    "cache_read_input_tokens": 0,
}


def sse(*events: dict) -> bytes:
    return b"".join(f"event: {e['type']}\r\ndata: {json.dumps(e)}\r\n\r\n".encode() for e in events)


START = {
    "type": "message_start",
    "message": {
        "type": "message",
        "usage": {
            "input_tokens": 120,
            "cache_creation_input_tokens": 30,
            "cache_read_input_tokens": 900,
            "output_tokens": 1,
        },
    },
}
DELTA = {"type": "message_delta", "delta": {"stop_reason": "end_turn"}, "usage": {}}


def test_a_stream_split_at_every_byte_counts_the_last_output_total() -> None:
    answer = sse(
        START,
        {"type": "content_block_delta", "index": 0, "delta": {"text": "hi"}},
        DELTA | {"usage": {"output_tokens": 7}},
        DELTA | {"usage": {"output_tokens": 12}},
        {"type": "message_stop"},
    )
    meter = UsageMeter("text/event-stream; charset=utf-8")
    for index in range(len(answer)):
        meter.feed(answer[index : index + 1])
    assert meter.counts() == {
        "input_tokens": 120,
        "output_tokens": 12,
        "cache_creation_input_tokens": 30,
        "cache_read_input_tokens": 900,
    }


def test_a_stream_cut_short_counts_what_it_saw() -> None:
    meter = UsageMeter("text/event-stream")
    whole = sse(START)
    meter.feed(whole + sse(DELTA | {"usage": {"output_tokens": 5}})[:20])
    assert meter.counts()["input_tokens"] == 120 and meter.counts()["output_tokens"] == 1


def test_a_whole_json_message_counts_its_usage() -> None:
    body = {"type": "message", "usage": {"input_tokens": 10, "output_tokens": 4}}
    meter = UsageMeter("application/json")
    raw = json.dumps(body).encode()
    meter.feed(raw[:7])
    meter.feed(raw[7:])
    assert meter.counts() == ZERO | {"input_tokens": 10, "output_tokens": 4}


def test_garbage_and_lies_count_nothing() -> None:
    bad_values = DELTA | {
        "usage": {"output_tokens": -5, "input_tokens": True, "cache_read_input_tokens": "9"}
    }
    meter = UsageMeter("text/event-stream")
    meter.feed(b"data: {not json\n\ndata: [1, 2]\n\n" + sse(bad_values))
    meter.feed(b"data: " + b"x" * (MAX_SSE_LINE_BYTES + 10))  # an endless line: dropped
    meter.feed(b'"still the same line"\n' + sse(DELTA | {"usage": {"output_tokens": 3}}))
    assert meter.counts() == ZERO | {"output_tokens": 3}
    error = UsageMeter("application/json")
    error.feed(b'{"type": "error", "error": {"type": "overloaded_error"}}')
    assert error.counts() == ZERO
