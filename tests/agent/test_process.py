"""run_command for real: bounded tails, stderr lines, the stop ladder on timeout and cancel."""

import asyncio
import time

import psutil
import pytest

from agent.process import OUTPUT_TAIL_BYTES, STOP_GRACE_SECONDS, run_command, stderr_tail

TIMEOUT_SECONDS = 30.0  # for one awaited condition; generous, so load cannot trip it


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
    script = "sleep 3601 & sleep 3601; wait"
    result = await run_command(["sh", "-c", script], timeout_seconds=0.3)
    assert result.timed_out
    assert time.monotonic() - began < STOP_GRACE_SECONDS  # SIGTERM was enough
    assert not _running("3601")


async def test_run_command_stops_the_group_when_cancelled() -> None:
    script = "sleep 3602 & wait"
    task = asyncio.create_task(run_command(["sh", "-c", script], timeout_seconds=60))
    async with asyncio.timeout(TIMEOUT_SECONDS):
        while not _running("3602"):  # as soon as there is a group: even mid-spawn
            await asyncio.sleep(0)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        async with asyncio.timeout(TIMEOUT_SECONDS):  # only the ladder ends `sleep 3602`
            await task
    assert not _running("3602")


def _running(seconds: str) -> list[psutil.Process]:
    """`sleep <seconds>` processes still alive, whoever their parent is by now."""
    return [
        process
        for process in psutil.process_iter(["cmdline", "status"])
        if process.info["cmdline"] == ["sleep", seconds]
        and process.info["status"] != psutil.STATUS_ZOMBIE
    ]
