"""run_command for real: bounded tails, stderr lines, the stop ladder on timeout and cancel."""

import asyncio
import time

import psutil
import pytest

from agent.process import OUTPUT_TAIL_BYTES, run_command, stderr_tail


def test_stderr_tail_keeps_the_last_non_empty_lines() -> None:
    text = "\n".join(f"line {n}" for n in range(100)) + "\n\n\n"
    assert stderr_tail(text, lines=3) == "line 97\nline 98\nline 99"


async def test_run_command_keeps_bounded_tails_and_reports_lines() -> None:
    lines: list[str] = []
    script = "head -c 200000 /dev/zero | tr '\\0' x; echo; echo one >&2; echo two >&2; exit 3"
    result = await run_command(
        ["sh", "-c", script], timeout_seconds=10, on_stderr_line=lines.append
    )
    assert result.returncode == 3 and not result.timed_out
    assert len(result.stdout.encode()) == OUTPUT_TAIL_BYTES
    assert lines == ["one", "two"]


async def test_run_command_stops_the_whole_group_on_timeout() -> None:
    began = time.monotonic()
    result = await run_command(["sh", "-c", "sleep 30 & sleep 30; wait"], timeout_seconds=0.3)
    assert result.timed_out
    assert time.monotonic() - began < 5
    assert not _sleepers()


async def test_run_command_stops_the_group_when_cancelled() -> None:
    task = asyncio.create_task(run_command(["sh", "-c", "sleep 30 & wait"], timeout_seconds=60))
    await asyncio.sleep(0.3)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert not _sleepers()


def _sleepers() -> list[psutil.Process]:
    me = psutil.Process()
    found = []
    for process in me.children(recursive=True):
        try:
            if process.status() != psutil.STATUS_ZOMBIE and "sleep" in process.name():
                found.append(process)
        except psutil.NoSuchProcess:
            continue
    return found
