"""PtyProcess on real PTYs with real bash."""

import asyncio
import os
import signal
import time
from collections.abc import Callable
from pathlib import Path

import psutil
import pytest

from agent.shell import ShellCommand
from agent.terminals import pty
from agent.terminals.pty import ExitStatus, InputOverflow, PtyProcess, SpawnError, clamp_size
from tests.agent.process_output import TIMEOUT_SECONDS, Output

ENV = {"TERM": "xterm-256color", "PS1": "$ "}
POLL_SECONDS = 0.02  # for conditions nothing signals (processes, files)


def bash(*args: str, cwd: str | None = None, env: dict[str, str] | None = None) -> ShellCommand:
    return ShellCommand(["bash", "--norc", "--noprofile", *args], {**ENV, **(env or {})}, cwd)


async def start(command: ShellCommand, cols: int = 80, rows: int = 24) -> tuple[PtyProcess, Output]:
    output = Output()
    return PtyProcess.spawn(command, cols, rows, output), output


async def eventually(predicate: Callable[[], object]) -> None:
    async with asyncio.timeout(TIMEOUT_SECONDS):
        while not predicate():
            await asyncio.sleep(POLL_SECONDS)


def foreground_job(shell_pid: int, name: str) -> bool:
    """Whether a child of the shell called `name` runs in its terminal's foreground group."""
    for child in psutil.Process(shell_pid).children():
        try:
            with open(f"/proc/{child.pid}/stat", "rb") as stat:
                fields = stat.read().rsplit(b")", 1)[1].split()
            if child.name() == name and fields[2] == fields[5]:  # pgrp == the tty's tpgid
                return True
        except (OSError, psutil.NoSuchProcess):
            continue
    return False


async def test_input_reaches_the_shell_and_its_output_comes_back() -> None:
    proc, output = await start(bash("-i"))
    proc.write(b"echo sum=$((40+2))\r")
    await output.wait_for(b"sum=42")
    proc.write(b"exit 3\r")
    assert await asyncio.wait_for(proc.wait(), TIMEOUT_SECONDS) == ExitStatus(3, None)
    proc.close()


async def test_the_pty_is_the_controlling_terminal_so_ctrl_c_interrupts() -> None:
    proc, output = await start(bash("-i"))
    # The sleep outlasts the test's timeout: only an interrupt lets "interrupted" through.
    proc.write(b"tty; sleep 3600; echo after-sleep\r")
    await output.wait_for(b"/dev/pts/")
    await eventually(lambda: foreground_job(proc.pid, "sleep"))
    proc.write(b"\x03")
    proc.write(b"echo interrupted\r")
    await output.wait_for(b"\rinterrupted\r\n")
    # Only echoes of the command line ("echo after-sleep"), never the command's output.
    assert b"\rafter-sleep" not in output.data
    assert b"\nafter-sleep" not in output.data
    await proc.terminate()
    proc.close()


async def test_resize_is_applied_and_clamped() -> None:
    proc, output = await start(bash("-i"), cols=100, rows=30)
    proc.write(b"stty size\r")
    await output.wait_for(b"30 100")
    assert proc.resize(10_000, 0) == (pty.MAX_COLS, pty.MIN_ROWS)
    proc.write(b"stty size\r")
    await output.wait_for(f"{pty.MIN_ROWS} {pty.MAX_COLS}".encode())
    await proc.terminate()
    proc.close()


def test_clamp_size_bounds() -> None:
    assert clamp_size(-5, 10_000) == (pty.MIN_COLS, pty.MAX_ROWS)
    assert clamp_size(80, 24) == (80, 24)


async def test_output_written_just_before_exit_is_not_lost() -> None:
    proc, output = await start(bash("-c", "head -c 300000 /dev/zero | tr '\\0' y"))
    status = await asyncio.wait_for(proc.wait(), TIMEOUT_SECONDS)
    assert status == ExitStatus(0, None)
    assert bytes(output.data) == b"y" * 300_000
    proc.close()


async def test_a_shell_that_ignores_hup_and_term_dies_of_sigkill() -> None:
    script = "trap '' HUP TERM; echo ready; while :; do sleep 0.1; done"
    proc, output = await start(bash("-c", script))
    await output.wait_for(b"ready")
    started = time.monotonic()
    status = await asyncio.wait_for(proc.terminate(), TIMEOUT_SECONDS)
    elapsed = time.monotonic() - started
    assert status == ExitStatus(None, signal.SIGKILL)
    assert elapsed >= pty.HUP_WAIT_SECONDS + pty.TERM_WAIT_SECONDS - 0.1
    proc.close()


async def test_a_shell_that_ignores_only_hup_dies_of_sigterm() -> None:
    script = (
        "trap '' HUP; trap 'echo got-term; exit 143' TERM; echo ready; while :; do sleep 0.1; done"
    )
    proc, output = await start(bash("-c", script))
    await output.wait_for(b"ready")
    status = await asyncio.wait_for(proc.terminate(), TIMEOUT_SECONDS)
    assert status == ExitStatus(143, None)
    proc.close()


async def test_an_interactive_shell_ends_on_sighup() -> None:
    proc, output = await start(bash("-i"))
    await output.wait_for(b"$ ")
    status = await asyncio.wait_for(proc.terminate(), TIMEOUT_SECONDS)
    assert status == ExitStatus(None, signal.SIGHUP)  # the first rung: no SIGTERM was needed
    proc.close()


async def test_input_to_a_child_that_does_not_read_overflows_without_blocking() -> None:
    proc, output = await start(bash("-c", "stty raw -echo; echo ready; sleep 30"))
    await output.wait_for(b"ready")
    # A write that blocked would hang here (the child never reads) until pytest's timeout.
    with pytest.raises(InputOverflow):
        for _ in range(100):
            proc.write(b"z" * 64 * 1024)
    await proc.terminate()
    proc.close()


async def test_paused_output_is_delivered_on_resume(tmp_path: Path) -> None:
    flag = tmp_path / "echoed"
    proc, output = await start(bash("-c", f"read line; echo got-$line; touch {flag}; sleep 30"))
    proc.pause_reading()
    proc.write(b"x\r")
    await eventually(flag.exists)  # got-x is on the terminal now
    for _ in range(3):  # loop turns in which an unpaused reader would have taken it
        await asyncio.sleep(0)
    assert b"got-x" not in output.data
    proc.resume_reading()
    await output.wait_for(b"got-x")
    await proc.terminate()
    proc.close()


async def test_cwd_and_a_clean_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SAM_SECRET_FOR_TEST", "leak")
    command = bash("-c", 'pwd; echo "secret=[$SAM_SECRET_FOR_TEST] term=$TERM"', cwd=str(tmp_path))
    proc, output = await start(command)
    await asyncio.wait_for(proc.wait(), TIMEOUT_SECONDS)
    text = output.data.decode()
    assert str(tmp_path) in text
    assert "secret=[] term=xterm-256color" in text
    proc.close()


async def test_a_missing_program_is_a_spawn_error() -> None:
    with pytest.raises(SpawnError, match="not found"):
        await start(ShellCommand(["no-such-program-sam"], ENV))


async def test_close_releases_the_file_descriptors() -> None:
    before = len(os.listdir("/proc/self/fd"))
    proc, _ = await start(bash("-c", "exit 0"))
    await asyncio.wait_for(proc.wait(), TIMEOUT_SECONDS)
    proc.close()
    assert len(os.listdir("/proc/self/fd")) == before
