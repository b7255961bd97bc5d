"""The ACP terminal/* methods of one agent session, on the node's terminal manager.

Every command the adapter runs through `terminal/create` becomes a read-only tab of the
workspace (agent/terminals/manager.py `start_owned`): listed with its terminals, owned by
the agent session, titled with the command line, watched live over the terminal protocol.
It runs in the container as the session's user (the launcher's `command`). The tab stays
listed after the command ends and after `terminal/release`, until the agent session stops;
the session keeps at most `max_sessions` of them, dropping released ones first.

`terminal/output` reads the tab's ring: at most `outputByteLimit` bytes, cut from the
start at a UTF-8 character boundary, `truncated` when anything was cut or evicted.
"""

from __future__ import annotations

import re
import secrets
import signal
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol

import acp
from acp.schema import EnvVariable, TerminalExitStatus

from agent.shell import ShellCommand
from agent.terminals.manager import TerminalManager
from agent.terminals.pty import SpawnError
from agent.terminals.session import Session
from wire import terminal as p

# A command's output the gateway keeps for terminal/output, whatever outputByteLimit asks.
MAX_OUTPUT_BYTES = 16 * 1024 * 1024
CONTROL_CHARACTERS = re.compile(r"[\x00-\x1f\x7f]+")


class CommandFor(Protocol):
    """How a launcher runs argv on a terminal: in the container as the session's user."""

    def __call__(
        self, argv: Sequence[str], env: Mapping[str, str], cwd: str | None
    ) -> ShellCommand: ...


@dataclass(frozen=True)
class _Handle:
    tab: Session
    output_byte_limit: int | None


class AgentTerminals:
    def __init__(
        self,
        manager: TerminalManager,
        workspace_id: str,
        owner: str,
        command_for: CommandFor,
        ring_bytes: int,
        max_tabs: int,
    ) -> None:
        self._manager = manager
        self._workspace_id = workspace_id
        self._owner = owner
        self._command_for = command_for
        self._ring_bytes = ring_bytes
        self._max_tabs = max_tabs
        self._handles: dict[str, _Handle] = {}  # terminal id -> its tab, until released
        self._tabs: list[Session] = []  # every tab of this session, oldest first

    async def create(
        self,
        command: str,
        args: list[str] | None,
        env: list[EnvVariable] | None,
        cwd: str | None,
        output_byte_limit: int | None,
    ) -> str:
        """Start the command; its terminal id. Without args, `command` is a shell line."""
        await self._make_room()
        argv = [command, *args] if args else ["sh", "-c", command]
        values = {variable.name: variable.value for variable in env or []}
        limit = output_byte_limit or self._ring_bytes
        ring_bytes = min(max(limit, self._ring_bytes), MAX_OUTPUT_BYTES)
        try:
            tab = await self._manager.start_owned(
                self._workspace_id,
                self._command_for(argv, values, cwd),
                _title([command, *(args or [])]),
                self._owner,
                ring_bytes,
            )
        except SpawnError as exc:
            raise acp.RequestError.internal_error({"details": str(exc)}) from None
        terminal_id = f"term-{secrets.token_hex(6)}"
        self._handles[terminal_id] = _Handle(tab, output_byte_limit)
        self._tabs.append(tab)
        return terminal_id

    def output(self, terminal_id: str) -> tuple[str, bool, TerminalExitStatus | None]:
        """(output, truncated, exit status or None while it runs)."""
        handle = self._handle(terminal_id)
        tab, limit = handle.tab, handle.output_byte_limit
        ring = tab.ring
        data = ring.read(ring.start, ring.end - ring.start)
        truncated = ring.start > 0
        if limit is not None and len(data) > limit:
            cut = len(data) - limit
            while cut < len(data) and data[cut] & 0xC0 == 0x80:  # a UTF-8 continuation byte
                cut += 1
            data, truncated = data[cut:], True
        return data.decode("utf-8", "replace"), truncated, _exit(tab)

    async def wait_for_exit(self, terminal_id: str) -> TerminalExitStatus:
        tab = self._handle(terminal_id).tab
        await tab.done.wait()
        status = _exit(tab)
        assert status is not None
        return status

    async def kill(self, terminal_id: str) -> None:
        await self._manager.kill(self._handle(terminal_id).tab)

    async def release(self, terminal_id: str) -> None:
        """Kill the command if it runs; the id is no longer valid, the tab stays listed."""
        handle = self._handle(terminal_id)
        del self._handles[terminal_id]
        await self._manager.kill(handle.tab)

    async def release_all(self) -> None:
        """The adapter that held the ids has gone: its commands are killed, tabs stay."""
        for terminal_id in list(self._handles):
            await self.release(terminal_id)

    async def close(self) -> None:
        """The agent session ends: every command is killed and its tab dropped."""
        self._handles.clear()
        tabs, self._tabs = self._tabs, []
        for tab in tabs:
            await self._manager.forget(tab)

    def _handle(self, terminal_id: str) -> _Handle:
        handle = self._handles.get(terminal_id)
        if handle is None:
            raise acp.RequestError.invalid_params(
                {"details": f"no terminal {terminal_id!r} (never created, or released)"}
            )
        return handle

    async def _make_room(self) -> None:
        held = {id(handle.tab) for handle in self._handles.values()}
        while len(self._tabs) >= self._max_tabs:
            released = next((tab for tab in self._tabs if id(tab) not in held), None)
            if released is None:
                raise acp.RequestError.invalid_params(
                    {"details": f"{self._max_tabs} terminals are open: release one first"}
                )
            self._tabs.remove(released)
            await self._manager.forget(released)


def _title(argv: Sequence[str]) -> str:
    """The command line as a tab name: no control characters, at most MAX_NAME_CHARS."""
    line = CONTROL_CHARACTERS.sub(" ", " ".join(argv)).strip() or "command"
    if len(line) > p.MAX_NAME_CHARS:
        line = line[: p.MAX_NAME_CHARS - 1] + "…"
    return line


def _exit(tab: Session) -> TerminalExitStatus | None:
    status = tab.exit_status
    if status is None:
        return None
    name = signal.Signals(status.signal).name if status.signal is not None else None
    return TerminalExitStatus(exit_code=status.exit_code, signal=name)
