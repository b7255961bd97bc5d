"""The baseline of bench_agent_session.py: an ACP adapter in a workspace container driven
directly over the stdio of a bare `docker exec -i`, with the ACP Python SDK as the client
and nothing of the gateway in between (no frames, no store, no viewers, no model proxy).

It advertises what the gateway advertises (agent/sessions/session.py CLIENT_CAPABILITIES)
and serves fs/* the same way (agent/sessions/files.py, in the container as its user);
claude-agent-acp 0.101 runs its own tools and calls neither fs/* nor terminal/*, so a
terminal/* call, or a permission request in bypass mode, is recorded as a problem that
fails the run instead of being answered differently from the gateway.
"""

from __future__ import annotations

import asyncio
import contextlib
import secrets
import signal
import time
from collections.abc import Mapping, Sequence
from typing import Any

import acp
from acp.client.connection import ClientSideConnection
from acp.schema import (
    Implementation,
    ReadTextFileResponse,
    TextContentBlock,
    WriteTextFileResponse,
)
from pydantic import BaseModel

from agent.sessions import files
from agent.sessions.adapter import StderrTail
from agent.sessions.container import SESSION_TAG_ENV, ContainerLauncher, ContainerUser
from agent.sessions.session import CLIENT_CAPABILITIES

STREAM_LIMIT_BYTES = 16 * 1024 * 1024  # the gateway's line limit (agent/sessions/adapter.py)
STEP_TIMEOUT_SECONDS = 120.0
EXIT_WAIT_SECONDS = 5.0


class AdapterFailed(Exception):
    """The adapter did not start or answer; the message ends with its stderr tail."""


class DirectClient:
    """The SDK's `Client`: updates timestamped on arrival (time.perf_counter)."""

    def __init__(self, launcher: ContainerLauncher) -> None:
        self._launcher = launcher
        self.updates: list[tuple[float, dict[str, Any]]] = []
        self.problems: list[str] = []

    async def session_update(self, session_id: str, update: BaseModel, **kwargs: Any) -> None:
        as_json = update.model_dump(mode="json", by_alias=True, exclude_none=True)
        self.updates.append((time.perf_counter(), as_json))

    async def read_text_file(
        self, session_id: str, path: str, line: int | None = None, limit: int | None = None,
        **kwargs: Any,
    ) -> ReadTextFileResponse:  # fmt: skip
        return await files.read_text_file(self._launcher, path, line, limit)

    async def write_text_file(
        self, session_id: str, path: str, content: str, **kwargs: Any
    ) -> WriteTextFileResponse:
        return await files.write_text_file(self._launcher, path, content)

    async def request_permission(self, *args: Any, **kwargs: Any) -> Any:
        return self._unexpected("session/request_permission (the session is in bypass mode)")

    async def create_terminal(self, *args: Any, **kwargs: Any) -> Any:
        return self._unexpected("terminal/create")

    async def terminal_output(self, *args: Any, **kwargs: Any) -> Any:
        return self._unexpected("terminal/output")

    async def wait_for_terminal_exit(self, *args: Any, **kwargs: Any) -> Any:
        return self._unexpected("terminal/wait_for_exit")

    async def kill_terminal(self, *args: Any, **kwargs: Any) -> Any:
        return self._unexpected("terminal/kill")

    async def release_terminal(self, *args: Any, **kwargs: Any) -> Any:
        return self._unexpected("terminal/release")

    def _unexpected(self, method: str) -> Any:
        self.problems.append(f"the adapter called {method}, which this baseline does not serve")
        raise acp.RequestError.method_not_found(method)


class DirectAdapter:
    """One adapter process: `start` (initialize, session/new, session/set_mode), `prompt`,
    `stop` (close stdin -> SIGTERM -> SIGKILL to its processes in the container)."""

    def __init__(self, target: ContainerUser, argv: Sequence[str], env: Mapping[str, str]) -> None:
        self.launcher = ContainerLauncher(target)
        self.client = DirectClient(self.launcher)
        self._target = target
        self._argv = argv
        self._env = env
        self._tag = f"bench-direct-{secrets.token_hex(6)}"
        self.stderr = StderrTail()
        self._process: asyncio.subprocess.Process | None = None
        self._conn: ClientSideConnection | None = None
        self._stderr_reader: asyncio.Task[None] | None = None
        self.session_id = ""
        self.agent_name = ""

    async def start(self, mode_id: str) -> None:
        env = {**self._env, SESSION_TAG_ENV: self._tag}
        self._process = await self.launcher.start(self._argv, env, limit=STREAM_LIMIT_BYTES)
        assert self._process.stdin and self._process.stdout and self._process.stderr
        self._stderr_reader = asyncio.create_task(self._keep_stderr(self._process.stderr))
        conn = self._conn = acp.connect_to_agent(
            self.client, self._process.stdin, self._process.stdout
        )
        try:
            async with asyncio.timeout(STEP_TIMEOUT_SECONDS):
                init = await conn.initialize(
                    protocol_version=acp.PROTOCOL_VERSION,
                    client_capabilities=CLIENT_CAPABILITIES,
                    client_info=Implementation(name="bench-direct", version="1"),
                )
                new = await conn.new_session(cwd=self._target.folder, mcp_servers=[])
                await conn.set_session_mode(session_id=new.session_id, mode_id=mode_id)
        except (acp.RequestError, ConnectionError, TimeoutError) as exc:
            raise self._failed("start", exc) from None
        self.session_id = new.session_id
        self.agent_name = init.agent_info.name if init.agent_info else ""

    async def _keep_stderr(self, stream: asyncio.StreamReader) -> None:
        while chunk := await stream.read(64 * 1024):
            self.stderr.feed(chunk)

    async def prompt(self, text: str) -> str:
        """One turn; its stop reason."""
        assert self._conn is not None
        try:
            async with asyncio.timeout(STEP_TIMEOUT_SECONDS):
                response = await self._conn.prompt(
                    session_id=self.session_id, prompt=[TextContentBlock(type="text", text=text)]
                )
        except (acp.RequestError, ConnectionError, TimeoutError) as exc:
            raise self._failed("prompt", exc) from None
        return response.stop_reason

    def _failed(self, step: str, exc: Exception) -> AdapterFailed:
        return AdapterFailed(f"direct {step}: {exc!r}; stderr ends: {self.stderr.text()[-1000:]}")

    async def stop(self) -> None:
        if self._process is None:
            return
        if self._conn is not None:
            await self._conn.close()
        process, tag = self._process, f"{SESSION_TAG_ENV}={self._tag}"
        with contextlib.suppress(OSError, RuntimeError):
            assert process.stdin is not None
            process.stdin.close()
        # Closing stdin does not end Claude Code: SIGTERM at once, SIGKILL if it stays.
        for signum in (signal.SIGTERM, signal.SIGKILL):
            await self.launcher.signal_tagged(tag, signum)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(process.wait(), EXIT_WAIT_SECONDS)
                return
        raise RuntimeError("the baseline adapter outlived SIGKILL")
