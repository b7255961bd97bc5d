"""The `ws-{id}.{domain}` proxy under real Pyodide, to a loopback agent double: HTTP reads
and an agent session's POST (its body carried) with a sam:agent token, and the WebSocket
pass-through, whose `101` carries the upstream socket (`response_web_socket` compares it
with `pyodide.ffi.jsnull`), for a terminal and for a session viewer (`after` kept, the
token moved to a header). The workspace is
made through the routes an agent and a user call: node ready, workspace create (the agent
double accepts it), workspace ready, terminal token.
"""

from dataclasses import dataclass

import pytest

from tests.pyodide.callers import APP, DOMAIN, Member, bearer, new_node, send_json, sign_in
from tests.pyodide.harness import PyodideWorker
from tests.pyodide.loopback_nodes import AgentDouble, NodeLauncherDouble
from wire.agent_session import (
    AgentSessionInfo,
    AnswerPermissionFrame,
    ErrorFrame,
    NewAgentSession,
    PermissionMode,
)
from wire.terminal import ListFrame, SessionsFrame
from wire.version import VERSION


@dataclass(frozen=True)
class Workspace:
    id: str
    owner: Member
    terminal_token: str

    def url(self, rest: str) -> str:
        return f"https://ws-{self.id}.{DOMAIN}/workspaces/{self.id}{rest}"


@pytest.fixture(scope="module")
def workspace(
    development_worker: PyodideWorker, node_launcher: NodeLauncherDouble, agent: AgentDouble
) -> Workspace:
    worker = development_worker
    owner = sign_in(worker, "pyproxy")
    node_id = new_node(worker, node_launcher, owner)
    node = bearer(owner.node_tokens[node_id])
    ready = {"agent_port": agent.port, "version": VERSION}
    answer = send_json(worker, "POST", f"{APP}/api/nodes/{node_id}/ready", ready, node)
    assert answer.status == 200, answer.body
    wanted = {"repository": "https://example.com/proxy/repo.git", "provider": "local"}
    made = send_json(worker, "POST", f"{APP}/api/workspaces", wanted, owner.session_headers())
    assert made.status == 202, made.body
    workspace_id = made.json()["id"]
    assert workspace_id in agent.workspaces, "the Worker dispatched it to the node's agent"
    running = {"state": "running", "container_id": "c1", "remote_user": "sam", "backend": "host"}
    path = f"{APP}/api/workspaces/{workspace_id}/ready"
    assert send_json(worker, "POST", path, running, node).status == 200
    issued = send_json(
        worker,
        "POST",
        f"{APP}/api/terminal/token",
        {"workspace_id": workspace_id},
        owner.session_headers(),
    )
    assert issued.status == 200, issued.body
    return Workspace(workspace_id, owner, issued.json()["token"])


def test_a_terminal_websocket_passes_through_to_the_agent(
    development_worker: PyodideWorker, agent: AgentDouble, workspace: Workspace
) -> None:
    listing = ListFrame(type="list", request_id="r1").model_dump_json()

    response = development_worker.fetch(
        workspace.url(f"/terminal/ws?token={workspace.terminal_token}"),
        headers={"upgrade": "websocket", "connection": "upgrade"},
        web_socket_texts=(listing,),
    )

    assert response.status == 101, response.body
    assert response.web_socket
    [reply] = response.web_socket_replies
    assert SessionsFrame.model_validate_json(reply) == SessionsFrame(request_id="r1", sessions=[])
    path, authorization, token = agent.forwarded[-1]
    assert path == f"/workspaces/{workspace.id}/terminal/ws"
    assert (authorization, token) == (None, workspace.terminal_token)


def test_a_websocket_from_another_site_is_refused(
    development_worker: PyodideWorker, workspace: Workspace
) -> None:
    response = development_worker.fetch(
        workspace.url(f"/terminal/ws?token={workspace.terminal_token}"),
        headers={"upgrade": "websocket", "origin": "https://elsewhere.example.org"},
    )

    assert response.status == 403
    assert response.json()["error"] == "forbidden_origin"
    assert not response.web_socket


@pytest.mark.parametrize("rest", ["", "/terminals", "/boot-log"])
def test_the_owner_reads_the_agent_over_http(
    development_worker: PyodideWorker, agent: AgentDouble, workspace: Workspace, rest: str
) -> None:
    response = development_worker.fetch(
        workspace.url(rest), headers=workspace.owner.session_headers()
    )

    assert response.status == 200, response.body
    assert response.headers["cache-control"] == "no-store"
    path, authorization, _token = agent.forwarded[-1]
    assert path == f"/workspaces/{workspace.id}{rest}"
    assert authorization is not None and authorization.startswith("Bearer ")
    assert workspace.owner.session not in authorization


def test_a_caller_without_a_token_is_refused(
    development_worker: PyodideWorker, workspace: Workspace
) -> None:
    response = development_worker.fetch(
        workspace.url("/terminal/ws"), headers={"upgrade": "websocket"}
    )

    assert response.status == 401
    assert set(response.json()) == {"error", "message"}


def test_an_agent_answer_without_a_socket_is_not_passed_through(
    development_worker: PyodideWorker, workspace: Workspace
) -> None:
    # The agent double serves no boot-log WebSocket: its 404 carries no socket (JS null),
    # which the proxy must see as none and answer as the agent not knowing the workspace.
    response = development_worker.fetch(
        workspace.url(f"/boot-log/ws?token={workspace.terminal_token}"),
        headers={"upgrade": "websocket"},
    )

    assert response.status == 409, response.body
    assert response.json()["error"] == "workspace_not_ready"
    assert not response.web_socket


def test_an_agent_session_is_created_through_the_proxy(
    development_worker: PyodideWorker, agent: AgentDouble, workspace: Workspace
) -> None:
    body = NewAgentSession(permission_mode=PermissionMode.BYPASS).model_dump_json().encode()

    response = development_worker.fetch(
        workspace.url(f"/agent-sessions?token={workspace.terminal_token}"),
        method="POST",
        headers={"content-type": "application/json"},
        body=body,
    )

    assert response.status == 201, response.body
    created = AgentSessionInfo.model_validate_json(response.body)
    assert created.permission_mode == PermissionMode.BYPASS
    path, authorization, token = agent.forwarded[-1]
    assert path == f"/workspaces/{workspace.id}/agent-sessions"
    assert token is None and authorization is not None and authorization.startswith("Bearer ")
    assert workspace.terminal_token not in authorization  # a sam:agent token, minted here
    assert agent.bodies[-1] == body


def test_a_session_viewer_passes_through_with_its_after(
    development_worker: PyodideWorker, agent: AgentDouble, workspace: Workspace
) -> None:
    answer = AnswerPermissionFrame(type="answer_permission", request_id="r1", option_id="allow")

    response = development_worker.fetch(
        workspace.url(f"/agent-sessions/as-1/ws?after=3&token={workspace.terminal_token}"),
        headers={"upgrade": "websocket", "connection": "upgrade"},
        web_socket_texts=(answer.model_dump_json(),),
    )

    assert response.status == 101, response.body
    [reply] = response.web_socket_replies
    assert ErrorFrame.model_validate_json(reply).code == "unknown_request"
    path, authorization, token = agent.forwarded[-1]
    assert path == f"/workspaces/{workspace.id}/agent-sessions/as-1/ws"
    assert (authorization, token) == (f"Bearer {workspace.terminal_token}", None)
    assert agent.queries[-1] == {"after": "3"}


def test_the_apps_pages_call_a_workspace_cross_origin(
    development_worker: PyodideWorker, workspace: Workspace
) -> None:
    # CORS under real Pyodide: the preflight's bodiless 204, the header added to an
    # upstream answer (a fetched Response, whose headers are immutable on Cloudflare) and
    # to a refusal the proxy answers itself.
    origin = {"origin": APP}
    preflight = development_worker.fetch(
        workspace.url("/agent-sessions"),
        method="OPTIONS",
        headers={
            **origin,
            "access-control-request-method": "POST",
            "access-control-request-headers": "content-type",
        },
    )
    assert preflight.status == 204, preflight.body
    assert preflight.headers["access-control-allow-origin"] == APP
    assert preflight.headers["access-control-allow-methods"] == "GET, POST"

    listed = development_worker.fetch(
        workspace.url(f"/terminals?token={workspace.terminal_token}"), headers=origin
    )
    assert listed.status == 200, listed.body
    assert listed.headers["access-control-allow-origin"] == APP
    assert listed.headers["cache-control"] == "no-store"

    refused = development_worker.fetch(workspace.url("/agent-sessions"), headers=origin)
    assert refused.status == 401 and refused.json()["error"] == "unauthorized"
    assert refused.headers["access-control-allow-origin"] == APP

    elsewhere = {"origin": "https://elsewhere.example", "access-control-request-method": "GET"}
    other = development_worker.fetch(workspace.url(""), method="OPTIONS", headers=elsewhere)
    assert other.status == 403 and other.json()["error"] == "cors_refused"
    assert "access-control-allow-origin" not in other.headers
