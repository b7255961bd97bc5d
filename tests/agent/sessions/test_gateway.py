"""The ACP gateway with real parts: the real Claude Code adapter (from the read-only tools
mount, on the base image with no Node of its own) in a real workspace container on its own
network, talking through the model proxy on the workspace's channel to the scripted
Messages API, which accepts only the owner's real key. One agent and one workspace serve
the whole walk, to keep the real-adapter runs to a handful."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import secrets
import subprocess
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from agent.sessions.tools import NODE, TOOLS_TARGET
from tests.agent.conftest import BASE_IMAGE
from tests.fakes.anthropic import ScriptedModel, Turn, is_side_call, text, tool_use
from tests.fixtures.repos import make_repo
from tests.support.agent import AgentProcess
from tests.support.container_tools import model_for_the_adapter
from tests.support.control_plane import ControlPlaneDouble
from wire.callbacks import AgentCredential

READY_TIMEOUT_SECONDS = 120.0
FRAME_TIMEOUT_SECONDS = 60.0

pytestmark = pytest.mark.timeout(300)


@pytest.fixture
def model() -> Any:
    with model_for_the_adapter() as scripted:
        yield scripted


class Viewer:
    """A viewer WebSocket of one agent session."""

    def __init__(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        self.ws = ws
        self.frames: list[dict[str, Any]] = []

    async def until(self, kind: str, **fields: Any) -> dict[str, Any]:
        while True:
            message = await asyncio.wait_for(self.ws.receive(), FRAME_TIMEOUT_SECONDS)
            assert message.type == aiohttp.WSMsgType.TEXT, message
            frame = json.loads(message.data)
            self.frames.append(frame)
            if frame["type"] == kind and all(frame.get(k) == v for k, v in fields.items()):
                return frame

    async def answer(self, request_id: str, option_id: str) -> None:
        await self.ws.send_json(
            {"type": "answer_permission", "request_id": request_id, "option_id": option_id}
        )


NODELESS_IMAGE = f"""FROM {BASE_IMAGE}
USER root
RUN rm -f /usr/bin/node /usr/local/bin/node && ! command -v node
USER sam
"""


def adapter_pids(container: str) -> set[str]:
    return set(in_container(container, "pgrep", "-f", "claude-agent-acp/dist").split())


def in_container(container: str, *argv: str) -> str:
    done = subprocess.run(["docker", "exec", container, *argv], capture_output=True, text=True)
    return done.stdout


async def test_claude_code_in_a_workspace_container(
    agent_factory: Any, control_plane: ControlPlaneDouble, model: ScriptedModel, tmp_path: Path
) -> None:
    # The owner's key, fresh for this run so that a leak cannot be an old run's: the control
    # plane hands it out, the model accepts nothing else, and it must be found nowhere.
    real_key = f"sk-ant-api03-{secrets.token_hex(24)}"
    control_plane.agent_credential = AgentCredential(kind="api_key", secret=real_key)
    model.keys = {real_key}
    # The model is the node's default upstream (the credential names no base URL).
    agent: AgentProcess = agent_factory(
        backend="docker",
        extra_env={"SAM_BASE_IMAGE": BASE_IMAGE, "SAM_MODEL_BASE_URL": model.url},
    )
    repo = make_repo(tmp_path, "repo")
    (repo / "notes.txt").write_text("the secret word is pineapple\n")
    # A user's image with no Node of its own: the adapter must bring everything it needs.
    (repo / ".devcontainer").mkdir()
    (repo / ".devcontainer" / "Dockerfile").write_text(NODELESS_IMAGE)
    (repo / ".devcontainer" / "devcontainer.json").write_text(
        json.dumps({"build": {"dockerfile": "Dockerfile"}, "remoteUser": "sam"})
    )
    subprocess.run(["git", "-C", str(repo), "add", "."], check=True)
    subprocess.run(["git", "-C", str(repo), "commit", "-qm", "notes"], check=True)
    workspace_id = f"ws-{uuid.uuid4().hex[:8]}"  # its own container, whatever ran before
    with agent.client() as client:
        answer = client.post("/workspaces", json={"id": workspace_id, "repository": str(repo)})
        assert answer.status_code == 202
    try:
        control_plane.wait_for("ready", target=workspace_id, timeout=READY_TIMEOUT_SECONDS)
        stand_in = await walk(agent, control_plane, model, workspace_id)
    finally:
        with agent.client() as client:
            deleted = client.delete(f"/workspaces/{workspace_id}")
            assert deleted.status_code == 200, agent.log()[-6000:]
    # The stand-in dies with the workspace: its channel no longer answers it.
    assert await model_call(stand_in) is None
    scan_host_for(real_key, agent)


async def walk(
    agent: AgentProcess, control_plane: ControlPlaneDouble, model: ScriptedModel, workspace_id: str
) -> StandIn:
    """The whole conversation; returns what the adapter was given for a model key."""
    with agent.client() as client:
        workspace = client.get(f"/workspaces/{workspace_id}").json()
    container, folder = workspace["container_id"], workspace["remote_folder"]
    # The image has no Node; the adapter's is the tools mount's, read-only even for root.
    nodeless = ["docker", "exec", container, "sh", "-c", "command -v node nodejs"]
    assert subprocess.run(nodeless, capture_output=True, text=True).stdout == ""
    assert in_container(container, NODE, "--version").strip() == "v22.23.5"
    probe = ["docker", "exec", "-u", "0", container, "touch", f"{TOOLS_TARGET}/x"]
    assert "Read-only file system" in subprocess.run(probe, capture_output=True, text=True).stderr
    base = f"/workspaces/{workspace_id}/agent-sessions"

    async with aiohttp.ClientSession(agent.url, headers=agent.auth()) as http:

        async def create(**body: Any) -> dict[str, Any]:
            async with http.post(base, json=body) as answer:
                assert answer.status == 201, await answer.text()
                return await answer.json()

        async def view(session_id: str, after: int = 0, token: str | None = None) -> Viewer:
            headers = {"Authorization": f"Bearer {token}"} if token else None
            url = f"{base}/{session_id}/ws?after={after}"
            return Viewer(await http.ws_connect(url, headers=headers))

        # --- one turn that reads a file, writes a file and answers ---------------------
        model.script(
            Turn([text("Reading it."), tool_use("Read", {"file_path": f"{folder}/notes.txt"})]),
            Turn([tool_use("Write", {"file_path": f"{folder}/out.txt", "content": "done\n"})]),
            Turn([tool_use("Bash", {"command": "wc -c out.txt", "description": "Count"})]),
            Turn([text("The word is pineapple; out.txt is written.")]),
        )
        first = await create(prompt="read notes.txt and write out.txt", permission_mode="bypass")
        viewer = await view(first["id"])
        started = await viewer.until("started")
        capabilities = started["initialize"]["clientCapabilities"]
        assert capabilities["fs"] == {"readTextFile": True, "writeTextFile": True}
        assert capabilities["terminal"] is True
        assert started["initialize"]["clientInfo"]["name"] == "sam-agent"
        ended = await viewer.until("turn_ended")
        assert ended["stop_reason"] == "end_turn"
        assert "pineapple" in json.dumps(model.main_requests[1]["messages"])
        # Claude Code's side calls (the session's title at least) took no scripted turn.
        assert model.remaining == 0 and any(is_side_call(r) for r in model.requests)
        # claude-agent-acp 0.101 offers its own tools even with fs and terminal advertised
        # (no mcp__acp__*): it runs Bash itself, in the container, and never calls
        # terminal/* (the read-only tabs are tested with the stand-in agent instead).
        tools = {t["name"] for t in model.main_requests[0]["tools"]}
        assert {"Read", "Write", "Bash"} <= tools
        assert "5 out.txt" in json.dumps(model.main_requests[3]["messages"][-1])
        assert said(viewer.frames).endswith("The word is pineapple; out.txt is written.")
        owner = in_container(container, "stat", "-c", "%U %s", f"{folder}/out.txt").split()
        assert owner == [workspace["remote_user"], "5"]
        seqs = [f["seq"] for f in viewer.frames]
        assert seqs == list(range(1, len(seqs) + 1))

        # --- the key: every model request carried the owner's real key; the adapter
        # had only the channel's stand-in, and the proxy counted the session's tokens --------
        (real_key,) = model.keys or set()
        assert model.seen_keys and set(model.seen_keys) == {real_key}
        stand_in = adapter_stand_in(first["id"])
        assert stand_in.key != real_key
        assert stand_in.base_url.endswith(f"/model/sessions/{first['id']}")
        assert model_call_inside(container, stand_in) == 200  # what workspace code can do
        assert model_call_inside(container, stand_in, key="a-made-up-token") == 401
        async with http.get(f"{base}/{first['id']}") as a:
            usage = (await a.json())["model_usage"]
        assert usage["requests"] >= len(model.main_requests)
        assert usage["input_tokens"] > 0 and usage["output_tokens"] > 0

        # --- resume: a viewer that had frame N gets exactly the ones after it ------------
        middle = seqs[len(seqs) // 2]
        resumed = await view(first["id"], after=middle)
        await resumed.until("turn_ended")
        assert resumed.frames == viewer.frames[middle:]
        await resumed.ws.close()
        # Stopped now: an idle Claude Code may still call the model (a scripted turn each).
        async with http.post(f"{base}/{first['id']}/stop") as a:
            assert a.status == 200

        # --- a permission denied, then one allowed -----------------------------------------
        # Each prompt's turns are scripted just before it, so that a model call of an idle
        # Claude Code, if one is not recognised as a side call, cannot take one.
        model.script(
            Turn([tool_use("Write", {"file_path": f"{folder}/denied.txt", "content": "no\n"})]),
            Turn([text("Not written.")]),
        )
        asking = await create(permission_mode="ask")
        watcher = await view(asking["id"])
        async with http.post(f"{base}/{asking['id']}/prompt", json={"text": "write denied"}) as a:
            assert a.status == 202
        request = await watcher.until("permission_request")
        reject = next(o for o in request["options"] if o["kind"].startswith("reject"))
        await watcher.answer(request["request_id"], reject["optionId"])
        resolved = await watcher.until("permission_resolved")
        assert (resolved["outcome"], resolved["by"]) == ("selected", "viewer")
        await watcher.until("turn_ended")
        model.script(
            Turn([tool_use("Write", {"file_path": f"{folder}/allowed.txt", "content": "yes\n"})]),
            Turn([text("Written.")]),
        )
        async with http.post(f"{base}/{asking['id']}/prompt", json={"text": "write allowed"}) as a:
            assert a.status == 202
        request = await watcher.until("permission_request")
        allow = next(o for o in request["options"] if o["kind"] == "allow_once")
        await watcher.answer(request["request_id"], allow["optionId"])
        await watcher.answer(request["request_id"], allow["optionId"])  # the first one won
        assert (await watcher.until("error"))["code"] == "unknown_request"
        await watcher.until("turn_ended")
        listing = in_container(container, "ls", folder).split()
        assert "allowed.txt" in listing and "denied.txt" not in listing

        # --- cancel mid-stream, then stop: no adapter process is left -------------------
        model.script(Turn([text("A long answer that never ends ...")], stall=True))
        async with http.post(f"{base}/{asking['id']}/prompt", json={"text": "talk"}) as a:
            assert a.status == 202
        await watcher.until("update")
        while model.streams_open == 0:
            await asyncio.sleep(0.05)
        async with http.post(f"{base}/{asking['id']}/cancel") as a:
            assert a.status == 200
        assert (await watcher.until("turn_ended"))["stop_reason"] == "cancelled"
        async with http.post(f"{base}/{asking['id']}/stop") as a:
            assert (await a.json())["state"] == "stopped"
        await watcher.until("stopped")
        assert "claude-agent-acp" not in in_container(container, "ps", "-eo", "args")

        # --- bad input -----------------------------------------------------------------------
        async with http.get(f"{base}/as-unknown") as a:
            assert a.status == 404 and (await a.json())["error"] == "agent_session_not_found"
        async with http.post(f"{base}/{first['id']}/prompt", json={"text": "again"}) as a:
            assert a.status == 404  # stopped: not running on this node any more
        async with http.post(base, json={"agent": "nope"}) as a:
            assert a.status == 400 and "agent" in (await a.json())["message"]
        other = control_plane.terminal_token("ws-other")
        with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
            await view(first["id"], token=other)
        assert refused.value.status == 403
        mine = await view(
            first["id"], after=len(seqs), token=control_plane.terminal_token(workspace_id)
        )
        await mine.ws.close()
        # The owner has no key (deleted meanwhile): the session is refused, saying where to
        # add one, and no adapter starts.
        kept, control_plane.agent_credential = control_plane.agent_credential, None
        async with http.post(base, json={"permission_mode": "ask"}) as a:
            refused_body = await a.json()
            assert a.status == 409 and refused_body["error"] == "agent_credential_missing"
            assert "Settings → Agent" in refused_body["message"]
        control_plane.agent_credential = kept

    await crash_and_agent_restart(agent, model, workspace_id, workspace)
    scan_container_for(real_key, container)
    return stand_in


# --- where the key must not be ---------------------------------------------------------------


@dataclass(frozen=True)
class StandIn:
    base_url: str
    key: str


def environs() -> dict[Path, bytes]:
    """Every process's environment on this machine, the containers' processes included
    (inside a container even root may not read them: it lacks CAP_SYS_PTRACE)."""
    # The search reads what is there: a process started with a canary in its environment is
    # found by it (how many processes a machine runs varies, so no count is a check).
    canary = f"SAM_ENVIRON_CANARY={secrets.token_hex(8)}".encode()
    name, _, value = canary.decode().partition("=")
    with subprocess.Popen(["sleep", "60"], env={**os.environ, name: value}) as witness:
        found = {}
        for path in Path("/proc").glob("[0-9]*/environ"):
            with contextlib.suppress(OSError):  # a process that ended meanwhile
                found[path] = path.read_bytes()
        witness.kill()
    assert canary in found[Path(f"/proc/{witness.pid}/environ")].split(b"\0")
    return found


def adapter_stand_in(session_id: str) -> StandIn:
    """ANTHROPIC_BASE_URL and ANTHROPIC_API_KEY as the session's processes have them."""
    tag = f"SAM_AGENT_SESSION={session_id}".encode()
    found: dict[str, set[str]] = {}
    for raw in environs().values():
        entries = raw.split(b"\0")
        if tag not in entries:
            continue
        for entry in entries:
            name, _, value = entry.decode(errors="replace").partition("=")
            found.setdefault(name, set()).add(value)
    (base_url,) = found["ANTHROPIC_BASE_URL"]
    (key,) = found["ANTHROPIC_API_KEY"]
    return StandIn(base_url, key)


async def model_call(stand_in: StandIn, key: str | None = None) -> int | None:
    """GET /v1/models through the channel from this machine: the status, or None when
    nothing answers (only the workspace's own network is admitted past the listener)."""
    headers = {"x-api-key": key or stand_in.key, "anthropic-version": "2023-06-01"}
    try:
        async with (
            aiohttp.ClientSession() as http,
            http.get(stand_in.base_url + "/v1/models", headers=headers) as answer,
        ):
            return answer.status
    except aiohttp.ClientConnectionError:
        return None


MODEL_CALL = """
import os, urllib.request as request
headers = {"x-api-key": os.environ["KEY"], "anthropic-version": "2023-06-01"}
try:
    print(request.urlopen(request.Request(os.environ["URL"], headers=headers), timeout=10).status)
except request.HTTPError as error:
    print(error.code)
"""


def model_call_inside(container: str, stand_in: StandIn, key: str | None = None) -> int:
    """GET /v1/models through the channel as code in the workspace would, from inside its
    container (the key reaches `docker exec` by its environment, not its command line)."""
    env = {**os.environ, "KEY": key or stand_in.key, "URL": stand_in.base_url + "/v1/models"}
    argv = ["docker", "exec", "-e", "KEY", "-e", "URL", container, "python3", "-c", MODEL_CALL]
    done = subprocess.run(argv, env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    return int(done.stdout)


def scan_container_for(key: str, container: str) -> None:
    """Not in any file of the container, nor in `docker inspect`, nor in the environment
    of any process, the container's included (it is still running)."""

    def grep(needle: str) -> subprocess.CompletedProcess[str]:
        argv = [
            "docker", "exec", "-u", "0", container, "grep", "-rlF", "--exclude-dir=proc",
            "--exclude-dir=sys", "--exclude-dir=dev", needle, "/",
        ]  # fmt: skip
        return subprocess.run(argv, capture_output=True, text=True)

    # The search finds what is there: a canary planted in the container's /tmp.
    canary = key[::-1]
    subprocess.run(["docker", "exec", container, "sh", "-c", f"echo {canary} >/tmp/c"], check=True)
    assert grep(canary).stdout.split() == ["/tmp/c"]
    files = grep(key)
    assert files.returncode == 1 and not files.stdout, f"the key is in {files.stdout}"
    assert not [path for path, raw in environs().items() if key.encode() in raw]
    inspect = subprocess.run(["docker", "inspect", container], capture_output=True).stdout
    assert inspect and key.encode() not in inspect


def scan_host_for(key: str, agent: AgentProcess) -> None:
    """Not on any command line or in any environment on this machine, nor in the agent's
    state, its log or /tmp."""
    ps = subprocess.run(["ps", "-eww", "-o", "args"], capture_output=True, text=True).stdout
    assert ps and key not in ps
    assert not [path for path, raw in environs().items() if key.encode() in raw]
    log = agent.log()
    assert "model_proxy.relayed" in log and key not in log
    searched = 0
    for root in (agent.state_dir, Path("/tmp")):
        # Other tests' folders come and go meanwhile: what vanishes is skipped.
        for folder, _, names in os.walk(root):
            for path in (Path(folder) / name for name in names):
                with contextlib.suppress(OSError):
                    if path.is_file() and not path.is_symlink() and path.stat().st_size < 64 << 20:
                        assert key.encode() not in path.read_bytes(), path
                        searched += 1
    assert searched > 10


def kill_adapter(container: str, user: str, session_id: str) -> None:
    """kill -9 of the session's adapter (its Node process) inside the container, as its
    user (even root there may not read another user's process environment)."""
    script = (
        'for d in /proc/[0-9]*; do tr "\\0" "\\n" < "$d/environ" 2>/dev/null '
        '| grep -qxF "SAM_AGENT_SESSION=$1" && grep -q claude-agent-acp/dist/index.js '
        '"$d/cmdline" && kill -9 "${d#/proc/}" && echo killed; done'
    )
    done = subprocess.run(
        ["docker", "exec", "-u", user, container, "sh", "-c", script, "kill", session_id],
        capture_output=True,
        text=True,
    )
    assert "killed" in done.stdout, done


async def crash_and_agent_restart(
    agent: AgentProcess, model: ScriptedModel, workspace_id: str, workspace: dict[str, Any]
) -> None:
    container = workspace["container_id"]
    base = f"/workspaces/{workspace_id}/agent-sessions"
    async with aiohttp.ClientSession(agent.url, headers=agent.auth()) as http:
        async with http.post(base, json={"permission_mode": "bypass"}) as a:
            session_id = (await a.json())["id"]
        viewer = Viewer(await http.ws_connect(f"{base}/{session_id}/ws"))
        before = (await viewer.until("started"))["acp_session_id"]
        model.script(Turn([text("Hello.")]))  # a whole turn first: the session is saved
        async with http.post(f"{base}/{session_id}/prompt", json={"text": "hi"}) as a:
            assert a.status == 202
        await viewer.until("turn_ended")

        # --- the adapter killed mid-turn: crashed, restarted, the next prompt answered ---
        model.script(Turn([text("A long answer that is cut short ...")], stall=True))
        async with http.post(f"{base}/{session_id}/prompt", json={"text": "talk"}) as a:
            assert a.status == 202
        await viewer.until("update")
        kill_adapter(container, workspace["remote_user"], session_id)
        crashed = await viewer.until("crashed")
        assert (crashed["restarting"], crashed["exit_code"]) == (True, 137)
        assert (await viewer.until("restarting"))["cause"] == "crashed"
        resumed = await viewer.until("resumed")
        assert (resumed["context"], resumed["acp_session_id"]) == ("loaded", before)
        session_url = f"{base}/{session_id}"
        last_seq = await answered(
            http, session_url, viewer, model, "again", "Back after the crash."
        )
        while viewer.frames[-1]["seq"] < last_seq:
            await viewer.until("update")
        await viewer.ws.close()

    # --- the node agent killed (SIGKILL) and started again on the same state --------------
    agent.kill()
    agent.start()
    async with aiohttp.ClientSession(agent.url, headers=agent.auth()) as http:
        url = f"{base}/{session_id}/ws"
        again = Viewer(await http.ws_connect(f"{url}?after={last_seq}"))
        restarting = await again.until("restarting")
        # The adapter may still have sent a frame or two after the turn (usage, commands):
        # the replay starts right after last_seq either way.
        assert (again.frames[0]["seq"], restarting["cause"]) == (last_seq + 1, "agent_restarted")
        back = await again.until("resumed")
        assert back["context"] == "loaded"
        whole = Viewer(await http.ws_connect(f"{url}?after=0"))
        await whole.until("resumed", seq=back["seq"])
        assert whole.frames == viewer.frames + again.frames  # no gap, no duplicate
        last_seq = await answered(
            http, session_url, again, model, "and now?", "Back after the agent restart."
        )
        await again.ws.close()

    # --- a graceful restart (SIGTERM): the session is suspended, then resumed --------------
    suspended = adapter_pids(container)
    assert suspended
    agent.restart()
    # The adapters the SIGTERM suspended are gone (the agent that came back starts its own).
    assert not suspended & adapter_pids(container)
    async with aiohttp.ClientSession(agent.url, headers=agent.auth()) as http:
        url = f"{base}/{session_id}/ws"
        after_sigterm = Viewer(await http.ws_connect(f"{url}?after={last_seq}"))
        restarting = await after_sigterm.until("restarting")
        first = after_sigterm.frames[0]["seq"]
        assert (first, restarting["cause"]) == (last_seq + 1, "agent_restarted")
        assert (await after_sigterm.until("resumed"))["context"] == "loaded"
        async with http.post(f"{base}/{session_id}/stop") as a:
            assert (await a.json())["state"] == "stopped"
    assert "claude-agent-acp" not in in_container(container, "ps", "-eo", "args")


async def answered(
    http: aiohttp.ClientSession,
    session_url: str,
    viewer: Viewer,
    model: ScriptedModel,
    prompt: str,
    reply: str,
) -> int:
    """`prompt` sent with the model scripted to say `reply`, the turn ended with it seen by
    `viewer`; the session's last seq."""
    model.script(Turn([text(reply)]))
    async with http.post(f"{session_url}/prompt", json={"text": prompt}) as a:
        assert a.status == 202
    assert (await viewer.until("turn_ended"))["stop_reason"] == "end_turn"
    assert said(viewer.frames).endswith(reply)
    async with http.get(session_url) as a:
        return (await a.json())["last_seq"]


def said(frames: list[dict[str, Any]]) -> str:
    """The assistant's text in these frames."""
    return "".join(
        f["update"]["content"].get("text", "")
        for f in frames
        if f["type"] == "update" and f["update"]["sessionUpdate"] == "agent_message_chunk"
    )
