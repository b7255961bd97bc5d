"""The agent as a subreaper: orphans below it are reaped, its own children's exits kept."""

from __future__ import annotations

import asyncio
import os
import subprocess
import time
from pathlib import Path

from agent.reaper import ORPHAN_AGE_SECONDS, Reaper, become_subreaper

WAIT_SECONDS = 10.0


def state_and_parent(pid: int) -> tuple[str, int] | None:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return None
    state, ppid = stat.rsplit(")", 1)[1].split()[:2]
    return state, int(ppid)


async def until_zombie_child(pid: int) -> None:
    async with asyncio.timeout(WAIT_SECONDS):
        while state_and_parent(pid) != ("Z", os.getpid()):
            await asyncio.sleep(0.02)


async def test_an_orphan_below_the_agent_is_adopted_then_reaped() -> None:
    become_subreaper()
    # The shell exits at once; its background sleep, orphaned, comes to us.
    shell = subprocess.run(
        ["sh", "-c", "sleep 0.1 & echo $!"], capture_output=True, text=True, check=True
    )
    orphan = int(shell.stdout)
    await until_zombie_child(orphan)

    reaper = Reaper()
    now = time.monotonic()
    assert reaper.sweep(now) == []  # just seen: it might be somebody's child about to be waited
    assert state_and_parent(orphan) == ("Z", os.getpid())
    assert reaper.sweep(now + ORPHAN_AGE_SECONDS) == [orphan]
    assert state_and_parent(orphan) is None


async def test_a_child_that_someone_waits_for_keeps_its_exit_status() -> None:
    child = subprocess.Popen(["sh", "-c", "exit 5"])
    await until_zombie_child(child.pid)
    reaper = Reaper()
    now = time.monotonic()
    assert reaper.sweep(now) == []
    assert reaper.sweep(now + ORPHAN_AGE_SECONDS / 2) == []
    assert child.wait() == 5
