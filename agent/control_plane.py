"""The agent's calls to the control plane, and the callback token they carry.

Reporter callbacks (boot log, ready, provisioning failed) go through one ordered queue and
one sender task: the caller never waits on the network and never sees an exception; a
failed POST is retried with backoff, then dropped with a log line. The heartbeat is posted
directly because its reply may carry a new callback token, which replaces the token file
atomically (write a temporary file, fsync, rename; mode 0600) and the token in memory.
"""

import asyncio
import contextlib
import json
import logging
import os
import tempfile
from pathlib import Path
from typing import Any

import aiohttp
from pydantic import BaseModel, ValidationError

from agent.config import AgentConfig
from agent.errors import AgentCredentialMissing, ControlPlaneError, NoGitToken
from agent.loopback import LoopbackResolver
from wire.agent_api import BootLogEntry
from wire.callbacks import (
    AGENT_CREDENTIAL_MISSING,
    AgentCredential,
    Beat,
    Heartbeat,
    ProvisioningFailed,
    WorkspaceReady,
)
from wire.chat import IngestResult, MessageBatch
from wire.git import GitToken

log = logging.getLogger("agent.control_plane")

REQUEST_TIMEOUT_SECONDS = 10.0
CALLBACK_ATTEMPTS = 4
CALLBACK_RETRY_BASE_SECONDS = 0.5
MAX_QUEUED_CALLBACKS = 1000
MAX_REPLY_BYTES = 64 * 1024
ERROR_EXCERPT_BYTES = 200
CLOSE_FLUSH_SECONDS = 5.0
TOKEN_FILE_MODE = 0o600
# The control plane's answers that mean: no token for this workspace's repository, ever.
NO_GIT_TOKEN_CODES = frozenset(
    {"repository_not_on_github", "github_app_not_configured", "repository_not_found"}
)
# Statuses after which the same request may succeed later.
RETRYABLE_STATUSES = frozenset({401, 408, 425, 429, 500, 502, 503, 504})


def new_session() -> aiohttp.ClientSession:
    """The agent's one HTTP client session (call inside the running loop)."""
    return aiohttp.ClientSession(
        connector=aiohttp.TCPConnector(resolver=LoopbackResolver()),
        timeout=aiohttp.ClientTimeout(total=REQUEST_TIMEOUT_SECONDS),
    )


def read_token_file(path: Path) -> str | None:
    try:
        token = path.read_text().strip()
    except FileNotFoundError:
        return None
    return token or None


def write_token_file(path: Path, token: str) -> None:
    """Replace the file atomically: a reader sees the old token or the new one, never half."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, temporary = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        os.fchmod(fd, TOKEN_FILE_MODE)
        with os.fdopen(fd, "w") as file:
            file.write(token + "\n")
            file.flush()
            os.fsync(file.fileno())
        os.replace(temporary, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temporary)
        raise
    directory = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(directory)
    finally:
        os.close(directory)


class ControlPlane:
    """The reporter the WorkspaceManager calls, and the heartbeat's transport."""

    def __init__(
        self,
        config: AgentConfig,
        session: aiohttp.ClientSession,
        retry_base_seconds: float = CALLBACK_RETRY_BASE_SECONDS,
    ) -> None:
        self._config = config
        self._session = session
        self._retry_base_seconds = retry_base_seconds
        self._queue: asyncio.Queue[tuple[str, BaseModel]] = asyncio.Queue(MAX_QUEUED_CALLBACKS)
        self._sender: asyncio.Task[None] | None = None
        self.token = read_token_file(config.callback_token_file)
        if self.token is None:
            log.warning(
                "callback_token.missing path=%s: callbacks go without a token and the "
                "control plane will refuse them; write the node's callback token there",
                config.callback_token_file,
            )

    # --- the reporter interface -------------------------------------------------------------

    # Each body goes out as the wire model the control plane parses it with.

    async def boot_log(self, workspace_id: str, entry: dict[str, Any]) -> None:
        body = BootLogEntry.model_validate(entry)
        self._enqueue(f"/api/workspaces/{workspace_id}/boot-log", body)

    async def workspace_ready(self, workspace_id: str, info: dict[str, Any]) -> None:
        self._enqueue(f"/api/workspaces/{workspace_id}/ready", WorkspaceReady.model_validate(info))

    async def provisioning_failed(self, workspace_id: str, error: dict[str, Any]) -> None:
        body = ProvisioningFailed.model_validate(error)
        self._enqueue(f"/api/workspaces/{workspace_id}/provisioning-failed", body)

    # --- the model proxy's key --------------------------------------------------------------

    async def agent_credential(self, workspace_id: str) -> AgentCredential:
        """The workspace owner's model key, for the model proxy to keep in memory only.
        Raises AgentCredentialMissing when the owner stored none, ControlPlaneError when
        the control plane cannot be reached or answers something else."""
        path = f"/api/workspaces/{workspace_id}/agent-credential"
        try:
            reply = await self._request("GET", path)
        except ControlPlaneError as exc:
            if exc.code == AGENT_CREDENTIAL_MISSING:
                raise AgentCredentialMissing(
                    "the workspace's owner has no Anthropic key: add your Anthropic key in "
                    "Settings → Agent, then start the agent session again"
                ) from None
            raise
        try:
            return AgentCredential.model_validate(reply)
        except ValidationError:
            # The error would quote the reply, and the reply holds the key.
            raise ControlPlaneError(f"GET {path} answered an unknown shape") from None

    # --- git's read token ------------------------------------------------------------------

    async def git_token(self, workspace_id: str) -> GitToken:
        """A read token for the workspace's own repository. Raises NoGitToken when the
        control plane has none for it (not on GitHub, no App, no installation reaching it),
        ControlPlaneError when it cannot be reached or answers something else."""
        path = f"/api/workspaces/{workspace_id}/git-token"
        try:
            reply = await self._request("POST", path)
        except ControlPlaneError as exc:
            if exc.code in NO_GIT_TOKEN_CODES:
                raise NoGitToken(exc.message) from None
            raise
        try:
            return GitToken.model_validate(reply)
        except ValidationError:
            # The error would quote the reply, and the reply holds the token.
            raise ControlPlaneError(f"POST {path} answered an unknown shape") from None

    # --- the chat outbox ---------------------------------------------------------------------

    async def chat_messages(self, workspace_id: str, batch: MessageBatch) -> IngestResult:
        """POST a batch of a chat-linked session's frames. Raises ControlPlaneError (its
        `retryable` says whether the same batch may succeed later)."""
        path = f"/api/workspaces/{workspace_id}/chat-messages"
        reply = await self._request("POST", path, batch)
        try:
            return IngestResult.model_validate(reply)
        except ValidationError as exc:
            raise ControlPlaneError(f"POST {path} answered an unknown shape: {exc}") from exc

    # --- heartbeat --------------------------------------------------------------------------

    async def heartbeat(self, payload: dict[str, Any]) -> Beat:
        """POST the heartbeat; adopts a new callback token from the reply. Raises
        ControlPlaneError when the control plane cannot be reached, refuses it, or answers
        something that is not a Beat."""
        path = f"/api/nodes/{self._config.node_id}/heartbeat"
        reply = await self._request("POST", path, Heartbeat.model_validate(payload))
        try:
            beat = Beat.model_validate(reply)
        except ValidationError as exc:
            raise ControlPlaneError(f"POST {path} answered an unknown shape: {exc}") from exc
        new_token = (beat.callback_token or "").strip()
        if new_token and new_token != self.token:
            self.replace_token(new_token)
        return beat

    def replace_token(self, token: str) -> None:
        write_token_file(self._config.callback_token_file, token)
        self.token = token
        log.info("callback_token.rotated path=%s", self._config.callback_token_file)

    # --- plumbing ---------------------------------------------------------------------------

    def _enqueue(self, path: str, body: BaseModel) -> None:
        if self._sender is None or self._sender.done():
            self._sender = asyncio.get_running_loop().create_task(self._send_forever())
        try:
            self._queue.put_nowait((path, body))
        except asyncio.QueueFull:
            log.error(
                "callback.dropped path=%s reason=queue_full size=%d", path, self._queue.qsize()
            )

    async def _send_forever(self) -> None:
        while True:
            path, body = await self._queue.get()
            try:
                await self._deliver(path, body)
            finally:
                self._queue.task_done()

    async def _deliver(self, path: str, body: BaseModel) -> None:
        for attempt in range(1, CALLBACK_ATTEMPTS + 1):
            try:
                await self._request("POST", path, body)
                log.debug("callback.sent path=%s attempt=%d", path, attempt)
                return
            except ControlPlaneError as exc:
                if attempt == CALLBACK_ATTEMPTS or not exc.retryable:
                    log.error("callback.dropped path=%s attempts=%d error=%s", path, attempt, exc)
                    return
                log.warning("callback.retry path=%s attempt=%d error=%s", path, attempt, exc)
                await asyncio.sleep(self._retry_base_seconds * 2 ** (attempt - 1))

    async def _request(
        self, method: str, path: str, body: BaseModel | None = None
    ) -> dict[str, Any]:
        url = self._config.control_plane_url + path
        headers = {"Authorization": f"Bearer {self.token}"} if self.token else {}
        if body is not None:  # the model's own compact JSON: its size is what was measured
            headers["Content-Type"] = "application/json"
        data = None if body is None else body.model_dump_json()
        try:
            async with self._session.request(method, url, data=data, headers=headers) as response:
                raw = await _read_bounded(response, path)
                if response.status >= 400:
                    raise _refused(method, path, response.status, raw)
                try:
                    reply = json.loads(raw) if raw.strip() else {}
                except ValueError:
                    log.warning("control_plane.reply_not_json path=%s", path)
                    reply = {}
                return reply if isinstance(reply, dict) else {}
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise ControlPlaneError(f"{method} {path} failed: {exc!r}") from exc

    async def close(self, flush_seconds: float = CLOSE_FLUSH_SECONDS) -> None:
        """Give queued callbacks `flush_seconds` to go out, then stop the sender."""
        if self._sender is None:
            return
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._queue.join(), flush_seconds)
        if self._queue.qsize():
            log.warning("callback.unsent count=%d", self._queue.qsize())
        self._sender.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._sender


def _refused(method: str, path: str, status: int, raw: bytes) -> ControlPlaneError:
    """The control plane's 4xx/5xx as an error carrying its `{"error", "message"}`."""
    try:
        answer = json.loads(raw)
        code, message = str(answer["error"]), str(answer["message"])
    except (ValueError, KeyError, TypeError):
        code, message = None, raw[:ERROR_EXCERPT_BYTES].decode(errors="replace")
    error = ControlPlaneError(
        f"{method} {path} answered {status}: {message}", retryable=status in RETRYABLE_STATUSES
    )
    if code is not None:
        error.code = code
    return error


async def _read_bounded(response: aiohttp.ClientResponse, path: str) -> bytes:
    chunks: list[bytes] = []
    size = 0
    async for chunk in response.content.iter_chunked(MAX_REPLY_BYTES):
        size += len(chunk)
        if size > MAX_REPLY_BYTES:
            raise ControlPlaneError(f"{path}: reply over {MAX_REPLY_BYTES} bytes")
        chunks.append(chunk)
    return b"".join(chunks)
