"""Agent sessions through the ws-{id} proxy (worker/edge/proxy.py): the real edge, a real
node agent and a workspace container on it, with the stand-in ACP agent
(tests/agent/sessions/stand_in_agent.mjs) as its Claude Code adapter, for speed.

The node agent is started by the test (tests/support/agent.py), not by the edge's
launcher, so that its container tools folder can hold the stand-in where the adapter would
be; it trusts the edge's signing keys (the edge's JWKS and issuer) and reports its
heartbeats to a control-plane double. Its node row is written into the edge's D1 file,
as test_proxy.py does for its recorder, and the workspace is dispatched to it the same way.
"""

import asyncio
import json
import os
import secrets
import shutil
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import httpx
import pytest

from agent.config import CHECKOUT_CONTAINER_TOOLS
from agent.sessions.tools import ADAPTERS, REQUIRED_FILE, TOOLS_TARGET, volume_name
from tests.fixtures.repos import make_repo
from tests.support.agent import AgentProcess, start_agent
from tests.support.agent_tls import local_node_client
from tests.support.container_tools import require_container_tools
from tests.support.control_plane import ControlPlaneDouble
from tests.support.edge import Edge, running_edge
from tests.support.edge_tokens import EdgeSigner
from tests.worker.edge.test_proxy import (
    Member,
    agent_env_for,
    app_origin,
    dispatch,
    error_of,
    insert_node,
    insert_workspace,
    sign_in,
)
from worker.api.ratelimit import LIMITS
from worker.edge.proxy import MAX_BODY_BYTES

STAND_IN_SCRIPT = Path(__file__).parents[2] / "agent" / "sessions" / "stand_in_agent.mjs"
FRAME_TIMEOUT_SECONDS = 30.0

pytestmark = pytest.mark.timeout(300)


@dataclass
class Stage:
    edge: Edge
    signer: EdgeSigner
    alice: Member
    mallory: Member
    node: str
    agent: AgentProcess
    workspace: str  # alice's workspace A: a running container on the stand-in node
    other: str  # alice's workspace B on the same node (a row only)
    theirs: str  # mallory's workspace on her own node (rows only)
    theirs_node: str

    def host(self, workspace_id: str) -> str:
        return self.edge.host(f"ws-{workspace_id}")

    def url(self, workspace_id: str, rest: str = "") -> str:
        return f"/workspaces/{workspace_id}/agent-sessions{rest}"

    async def token(self, workspace_id: str | None = None) -> str:
        return await self.signer.terminal(
            self.alice.id, self.node, workspace_id or self.workspace, self.alice.session
        )

    def agent_requests(self) -> int:
        """How many agent-session requests the node agent has logged."""
        lines = self.agent.log().splitlines()
        return sum(1 for line in lines if "http.request" in line and "/agent-sessions" in line)


def stand_in_tools(base: Path) -> Path:
    """A container tools folder whose Claude Code adapter is the stand-in, on the real
    tools' Node: the agent mounts it into the workspace and runs it as it runs Claude Code."""
    tools = base / "tools"
    node = tools / REQUIRED_FILE
    node.parent.mkdir(parents=True)
    try:
        os.link(CHECKOUT_CONTAINER_TOOLS / REQUIRED_FILE, node)
    except OSError:  # another file system: a copy will do
        shutil.copy2(CHECKOUT_CONTAINER_TOOLS / REQUIRED_FILE, node)
    adapter = tools / Path(ADAPTERS["claude-code"][1]).relative_to(TOOLS_TARGET)
    adapter.parent.mkdir(parents=True)
    shutil.copy(STAND_IN_SCRIPT, adapter)
    (adapter.parent / "package.json").write_text('{"type": "module"}\n')
    for folder in [tools, *tools.rglob("*")]:
        if folder.is_dir():
            folder.chmod(0o755)  # the container's user reads it through a read-only bind
    return tools


@pytest.fixture(scope="module")
def stage(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stage]:
    require_container_tools()
    base = tmp_path_factory.mktemp("agent-sessions-proxy")
    variables = {"SAM_RATE_LIMITS": ",".join(f"{name}=100000/60" for name in LIMITS)}
    repo = make_repo(base, "repo", files={"README.md": "# agent sessions\n"})
    node_id = "n" + secrets.token_hex(8)
    with (
        running_edge(base / ".sam", vars=variables) as edge,
        ControlPlaneDouble(node_id=node_id) as heartbeats,
    ):
        signer = EdgeSigner(edge.data_dir, edge.domain)
        tools = stand_in_tools(base)
        trust_the_edge = agent_env_for(edge, signer, node_id, base)
        trust_the_edge["SAM_CONTAINER_TOOLS"] = str(tools)
        agent = start_agent(heartbeats, base / "agent-state", extra_env=trust_the_edge)
        workspace = None
        try:
            alice, mallory = sign_in(edge, "alice"), sign_in(edge, "mallory")
            insert_node(edge, alice.id, agent.port, node_id)
            workspace = dispatch(edge, signer, node_id, agent.port, repo)
            theirs_node = insert_node(edge, mallory.id, agent.port)
            yield Stage(
                edge=edge,
                signer=signer,
                alice=alice,
                mallory=mallory,
                node=node_id,
                agent=agent,
                workspace=workspace,
                other=insert_workspace(edge, alice.id, node_id),
                theirs=insert_workspace(edge, mallory.id, theirs_node),
                theirs_node=theirs_node,
            )
        finally:
            if workspace is not None:
                token = asyncio.run(signer.agent(node_id))
                with local_node_client(
                    edge.data_dir, node_id, agent.port, headers=agent.auth(token)
                ) as client:
                    client.delete(f"/workspaces/{workspace}")
            agent.stop()
            signer.close()
            # The agent made a volume for this folder; it outlives the folder otherwise.
            subprocess.run(["docker", "volume", "rm", volume_name(tools)], capture_output=True)


# --- calling the proxy -----------------------------------------------------------------------


async def send(
    stage: Stage,
    method: str,
    path: str,
    workspace_id: str | None = None,
    token: str | None = None,
    headers: dict[str, str] | None = None,
    **kwargs: Any,
) -> httpx.Response:
    """One HTTP request to ws-{workspace_id} (alice's A unless told)."""
    sent = {"host": stage.host(workspace_id or stage.workspace), **(headers or {})}
    params = {"token": token} if token is not None else None
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{stage.edge.port}") as client:
        return await client.request(
            method, path, params=params, headers=sent, timeout=FRAME_TIMEOUT_SECONDS, **kwargs
        )


class Viewer:
    """A session's viewer WebSocket, opened through the proxy."""

    def __init__(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        self.ws = ws
        self.frames: list[dict[str, Any]] = []

    async def until(self, kind: str) -> dict[str, Any]:
        while True:
            message = await asyncio.wait_for(self.ws.receive(), FRAME_TIMEOUT_SECONDS)
            assert message.type == aiohttp.WSMsgType.TEXT, message
            frame = json.loads(message.data)
            self.frames.append(frame)
            if frame["type"] == kind:
                return frame


async def view(
    http: aiohttp.ClientSession, stage: Stage, session_id: str, after: int, token: str
) -> Viewer:
    url = f"http://127.0.0.1:{stage.edge.port}{stage.url(stage.workspace, f'/{session_id}/ws')}"
    headers = {"Host": stage.host(stage.workspace)}
    ws = await http.ws_connect(url, params={"after": after, "token": token}, headers=headers)
    return Viewer(ws)


# --- the happy path ----------------------------------------------------------------------------


async def test_a_session_is_created_prompted_viewed_and_answered_through_the_edge(
    stage: Stage,
) -> None:
    token = await stage.token()
    before = stage.agent_requests()
    made = await send(stage, "POST", stage.url(stage.workspace), token=token, json={})
    assert made.status_code == 201, made.text
    session = made.json()
    sid = session["id"]
    prompted = await send(
        stage,
        "POST",
        stage.url(stage.workspace, f"/{sid}/prompt"),
        token=token,
        json={"text": "hello through the edge"},
    )
    assert prompted.status_code == 202, prompted.text

    async with aiohttp.ClientSession() as http:
        first = await view(http, stage, sid, 0, token)
        await first.until("turn_ended")
        seqs = [f["seq"] for f in first.frames]
        assert seqs == list(range(1, len(seqs) + 1))
        said = [f for f in first.frames if f["type"] == "update"]
        assert said[-1]["update"]["content"]["text"] == "hello through the edge"
        cut = seqs[len(seqs) // 2]
        await first.ws.close()

        # Resume after N: exactly the frames after it, then the live ones.
        again = await view(http, stage, sid, cut, token)
        await again.until("turn_ended")
        assert again.frames == first.frames[cut:]

        # A permission request reaches the viewer and its answer reaches the agent.
        asked = await send(
            stage,
            "POST",
            stage.url(stage.workspace, f"/{sid}/prompt"),
            token=token,
            json={"text": "ask"},
        )
        assert asked.status_code == 202, asked.text
        request = await again.until("permission_request")
        await again.ws.send_json(
            {"type": "answer_permission", "request_id": request["request_id"], "option_id": "allow"}
        )
        resolved = await again.until("permission_resolved")
        assert (resolved["option_id"], resolved["by"]) == ("allow", "viewer")
        ended = await again.until("turn_ended")
        assert ended["stop_reason"] == "end_turn"
        await again.ws.close()

    listed = await send(stage, "GET", stage.url(stage.workspace), token=token)
    assert sid in [s["id"] for s in listed.json()["sessions"]]
    shown = await send(stage, "GET", stage.url(stage.workspace, f"/{sid}"), token=token)
    assert shown.json()["last_seq"] == ended["seq"]
    cancelled = await send(stage, "POST", stage.url(stage.workspace, f"/{sid}/cancel"), token=token)
    assert cancelled.status_code == 200, cancelled.text
    # The owner's session works too, from the app's pages.
    cookie = {"cookie": f"sam_session={stage.alice.session}", "origin": app_origin(stage.edge)}
    stopped = await send(stage, "POST", stage.url(stage.workspace, f"/{sid}/stop"), headers=cookie)
    assert (stopped.status_code, stopped.json()["state"]) == (200, "stopped"), stopped.text
    assert stage.agent_requests() >= before + 6  # what the refusal tests count
    assert token not in stage.edge.log() and token not in stage.agent.log()


# --- refusals -----------------------------------------------------------------------------------


async def refused_request(stage: Stage, case: str) -> dict[str, Any]:
    """The arguments of `send` for each refusal case (a session create on A unless told)."""
    create = {"method": "POST", "path": stage.url(stage.workspace), "json": {}}
    app = app_origin(stage.edge)
    match case:
        case "another_users_token":
            theirs = await stage.signer.terminal(
                stage.mallory.id, stage.theirs_node, stage.theirs, stage.mallory.session
            )
            return {**create, "token": theirs}
        case "another_users_session":
            return {
                **create,
                "headers": {"cookie": f"sam_session={stage.mallory.session}", "origin": app},
            }
        case "a_token_for_a_on_b":
            return {
                **create,
                "path": stage.url(stage.other),
                "workspace_id": stage.other,
                "token": await stage.token(),
            }
        case "a_forged_session_id":
            path = stage.url(stage.workspace, "/..%2F..%2Fterminals/prompt")
            return {**create, "path": path, "json": {"text": "x"}, "token": await stage.token()}
        case "a_session_id_out_of_shape":
            path = stage.url(stage.workspace, "/as.1")
            return {"method": "GET", "path": path, "token": await stage.token()}
        case "a_climbing_session_id":
            path = stage.url(stage.workspace, f"/%2e%2e/%2e%2e/{stage.other}/terminals")
            return {"method": "GET", "path": path, "token": await stage.token()}
        case "an_oversized_body":
            body = {"text": "x" * MAX_BODY_BYTES}
            return {**create, "json": body, "token": await stage.token()}
        case "a_foreign_origin_with_a_token":
            headers = {"origin": "https://evil.example"}
            return {**create, "headers": headers, "token": await stage.token()}
        case "a_foreign_origin_with_the_session":
            headers = {
                "origin": "https://evil.example",
                "cookie": f"sam_session={stage.alice.session}",
            }
            return {**create, "headers": headers}
        case "the_session_without_an_origin":
            return {**create, "headers": {"cookie": f"sam_session={stage.alice.session}"}}
        case "a_sibling_workspaces_origin":
            headers = {
                "origin": f"http://{stage.host(stage.other)}",
                "cookie": f"sam_session={stage.alice.session}",
            }
            return {**create, "headers": headers}
    raise AssertionError(case)


REFUSED = {
    "another_users_token": (403, "token_scope"),
    "another_users_session": (404, "workspace_not_found"),
    "a_token_for_a_on_b": (403, "token_scope"),
    "a_forged_session_id": (404, "agent_session_not_found"),
    "a_session_id_out_of_shape": (404, "agent_session_not_found"),
    "a_climbing_session_id": (404, "agent_session_not_found"),
    "an_oversized_body": (413, "payload_too_large"),
    "a_foreign_origin_with_a_token": (403, "forbidden_origin"),
    "a_foreign_origin_with_the_session": (403, "forbidden_origin"),
    "the_session_without_an_origin": (403, "forbidden_origin"),
    "a_sibling_workspaces_origin": (403, "forbidden_origin"),
}


@pytest.mark.parametrize("case", list(REFUSED))
async def test_refused_before_the_agent(stage: Stage, case: str) -> None:
    status, code = REFUSED[case]
    before = stage.agent_requests()
    response = await send(stage, **(await refused_request(stage, case)))
    assert (response.status_code, error_of(response)) == (status, code), response.text
    await asyncio.sleep(0.2)  # a request that got through would be logged by now
    assert stage.agent_requests() == before, "the agent was reached"


@pytest.mark.parametrize(
    "credential, expected", [("a_token_for_b", "token_scope"), ("mallorys_token", "token_scope")]
)
async def test_a_viewer_needs_a_token_for_this_workspace(
    stage: Stage, credential: str, expected: str
) -> None:
    if credential == "a_token_for_b":
        token = await stage.token(stage.other)
    else:
        token = await stage.signer.terminal(
            stage.mallory.id, stage.theirs_node, stage.theirs, stage.mallory.session
        )
    url = f"http://127.0.0.1:{stage.edge.port}{stage.url(stage.workspace, '/as-0/ws')}"
    headers = {"Host": stage.host(stage.workspace)}
    async with aiohttp.ClientSession() as http:
        with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
            await http.ws_connect(url, params={"after": 0, "token": token}, headers=headers)
    assert refused.value.status == 403
