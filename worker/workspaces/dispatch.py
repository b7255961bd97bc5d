"""Putting a workspace on a node and bringing the node's agent in line with D1.

    place(deployment, ws)           claim a node of the owner's with room (warm first), or
                                    provision one and claim it; hand the workspace over if the
                                    node is up, else wait for its ready callback
    converge(deployment, ws, node)  ask the agent what it has (GET /workspaces/{id}) and act:
                                    unknown → POST /workspaces; running → mark running;
                                    stopped → POST .../restart; error → POST .../rebuild;
                                    pending/creating → creating
    on_node_ready(deployment, id)   the node's agent is up (its ready callback or first
                                    heartbeat): every pending or creating workspace of the
                                    node converges
    fail(deployment, ws, message)   → error, boot log entry, node claim released

Every step is idempotent: the agent answers 409 for a workspace it already has, and
`converge` starts from what the agent reports, so a repeat (two ready callbacks, a cron
run racing a request, an edge restarted mid-way) never makes a second container.
"""

import logging
from typing import Any

from wire.agent_api import AgentWorkspace, NewWorkspace
from worker.db import iso
from worker.deployment import Deployment
from worker.errors import SamError, Unavailable
from worker.logs import event
from worker.nodes import pool as node_pool
from worker.nodes import service as nodes
from worker.nodes.model import Node, Provider
from worker.states import NodeStatus, WorkspaceStatus
from worker.workspaces import agent_client, boot_log, store
from worker.workspaces.model import Workspace

log = logging.getLogger("sam.workspaces")

_W = WorkspaceStatus
PROVISIONING = (_W.PENDING, _W.CREATING)
# What the agent does with a workspace it reports in these states (wire/agent_api.py).
AGENT_ACTIONS = {_W.STOPPED: "restart", _W.ERROR: "rebuild"}
READY_FIELDS = ("container_id", "remote_user", "remote_folder", "backend")


class NoCapacity(Unavailable):
    def __init__(self) -> None:
        super().__init__(
            "no_capacity",
            "No node had room for the workspace, even a new one. Try again in a minute.",
        )


async def place(deployment: Deployment, workspace: Workspace) -> Workspace:
    """Claim (or provision) a node for `workspace` and hand it over once the node is up.

    A provider's refusal ends the workspace in error and is raised, so the caller sees why.
    """
    node = await node_pool.claim_any(
        deployment, workspace.user_id, workspace.id, Provider(workspace.provider)
    )
    if node is None:
        await boot_log.step(
            deployment,
            workspace.id,
            "node",
            "started",
            f"Requesting a new {workspace.provider} node.",
        )
        try:
            node = await _provision(deployment, workspace)
        except SamError as exc:
            await fail(
                deployment, workspace, f"No node could be provisioned: {exc.message}", "node"
            )
            raise
        event(log, "workspace.node_requested", workspace_id=workspace.id, node_id=node.id)
    else:
        await boot_log.step(
            deployment,
            workspace.id,
            "node",
            "succeeded",
            f"Placed on node {node.id} ({node.status}).",
        )
    await store.update(deployment, workspace.id, node_id=node.id, dispatched_at=None)
    # Read both again: the node may have called ready between the claim and the line
    # above, and its ready hook could not see this workspace yet. Both may dispatch then;
    # `converge` makes the second a no-op.
    workspace = await _current(deployment, workspace.id)
    node = await nodes.find_node(deployment, node.id) or node
    if node.status == NodeStatus.RUNNING and node.agent_url is not None:
        return await converge(deployment, workspace, node)
    await boot_log.step(
        deployment, workspace.id, "node", "started", f"Waiting for node {node.id} to come up."
    )
    return workspace


async def _provision(deployment: Deployment, workspace: Workspace) -> Node:
    node = await nodes.create_node(
        deployment, workspace.user_id, Provider(workspace.provider), size=workspace.size
    )
    if await node_pool.claim(deployment, node.id, workspace.id):
        return node
    # Another of the user's workspaces filled the new node first (claim_any takes nodes
    # still being created): any node with room will do, or the request fails.
    other = await node_pool.claim_any(
        deployment, workspace.user_id, workspace.id, Provider(workspace.provider)
    )
    if other is None:
        raise NoCapacity()
    return other


async def converge(deployment: Deployment, workspace: Workspace, node: Node) -> Workspace:
    """Make the agent of `node` provision `workspace` (if it is not already) and record
    what it says. Leaves the workspace as is when the agent cannot be reached (cron
    converges it again later)."""
    if workspace.status not in PROVISIONING:
        return workspace
    path = f"/workspaces/{workspace.id}"
    try:
        answer = await agent_client.call(deployment, node, "GET", path)
        if answer.status == 404:
            await boot_log.step(
                deployment,
                workspace.id,
                "dispatch",
                "started",
                f"Handing the workspace to the agent of node {node.id}.",
            )
            spec = NewWorkspace(
                id=workspace.id,
                repository=workspace.repository,
                branch=workspace.branch,
                trusted_devcontainer=workspace.trusted_devcontainer,
            )
            answer = await agent_client.call(deployment, node, "POST", "/workspaces", spec)
            if answer.status == 409:  # a repeat: it has it after all
                answer = await agent_client.call(deployment, node, "GET", path)
        elif answer.status == 200 and (state := answer.workspace().state) in AGENT_ACTIONS:
            await boot_log.step(
                deployment,
                workspace.id,
                "dispatch",
                "started",
                f"The agent of node {node.id} has the workspace {state}; "
                + ("starting it again." if state == _W.STOPPED else "rebuilding it."),
            )
            # A stopped container starts again as it was; a failed or interrupted one
            # (its post-create may have half run) is recreated on the same checkout.
            action = AGENT_ACTIONS[state]
            answer = await agent_client.call(deployment, node, "POST", f"{path}/{action}")
            if answer.status == 409:
                answer = await agent_client.call(deployment, node, "GET", path)
        reported = answer.workspace() if answer.status in (200, 202) else None
    except SamError as exc:
        await boot_log.step(deployment, workspace.id, "dispatch", "failed", exc.message)
        event(
            log,
            "workspace.dispatch_failed",
            level=logging.WARNING,
            workspace_id=workspace.id,
            error=exc.code,
        )
        return workspace
    if reported is None:
        return await _refused(deployment, workspace, node, answer)
    return await _record(deployment, workspace, node, reported)


async def _refused(
    deployment: Deployment, workspace: Workspace, node: Node, answer: agent_client.AgentAnswer
) -> Workspace:
    """What the agent's error answer means for the D1 row."""
    if answer.status == 400:
        return await fail(
            deployment, workspace, f"The agent refused the workspace: {answer.message}", "dispatch"
        )
    await boot_log.step(
        deployment,
        workspace.id,
        "dispatch",
        "failed",
        f"The agent of node {node.id} answered {answer.status}: {answer.message}",
    )
    return workspace  # converged again by the next ready callback or cron run


async def _record(
    deployment: Deployment, workspace: Workspace, node: Node, reported: AgentWorkspace
) -> Workspace:
    """What the workspace the agent reports means for the D1 row."""
    if reported.state == _W.RUNNING:
        return await agent_ready(deployment, workspace, reported.model_dump()) or workspace
    moment = iso(deployment.now())
    moved = await store.move(
        deployment, workspace.id, (_W.PENDING,), _W.CREATING, dispatched_at=moment
    )
    if moved is None:
        await store.update(deployment, workspace.id, dispatched_at=moment)
    event(
        log,
        "workspace.dispatched",
        workspace_id=workspace.id,
        node_id=node.id,
        agent_state=reported.state,
    )
    return await _current(deployment, workspace.id)


async def agent_ready(
    deployment: Deployment, workspace: Workspace, info: dict[str, Any]
) -> Workspace | None:
    """The agent says the workspace runs: → running (from pending, creating, or an error
    cron gave it meanwhile; its node claim taken again). None: it was stopped or deleted
    meanwhile, so the report is stale."""
    fields = {name: info.get(name) for name in READY_FIELDS if isinstance(info.get(name), str)}
    if workspace.status == _W.RUNNING:
        if fields:
            await store.update(deployment, workspace.id, **fields)
        return await _current(deployment, workspace.id)
    if workspace.status == _W.ERROR:
        if workspace.node_id is None or not await node_pool.claim(
            deployment, workspace.node_id, workspace.id
        ):
            return None  # its node is going away: it stays failed
        await store.move(deployment, workspace.id, (_W.ERROR,), _W.CREATING)
    moment = iso(deployment.now())
    await store.move(deployment, workspace.id, (_W.PENDING,), _W.CREATING, dispatched_at=moment)
    moved = await store.move(
        deployment,
        workspace.id,
        (_W.CREATING,),
        _W.RUNNING,
        ready_at=moment,
        error_message=None,
        **fields,
    )
    if moved is not None:
        event(log, "workspace.running", workspace_id=workspace.id, node_id=workspace.node_id)
    return moved


async def fail(deployment: Deployment, workspace: Workspace, message: str, step: str) -> Workspace:
    """→ error with `message` (shown to the owner: never a secret); its node released."""
    await boot_log.step(deployment, workspace.id, step, "failed", message)
    moved = await store.move(
        deployment,
        workspace.id,
        (_W.PENDING, _W.CREATING, _W.RUNNING),
        _W.ERROR,
        error_message=message,
    )
    if moved is None:
        return await _current(deployment, workspace.id)
    event(log, "workspace.failed", level=logging.WARNING, workspace_id=workspace.id, step=step)
    if moved.node_id is not None:
        await node_pool.release(deployment, moved.node_id, moved.id)
    return moved


async def on_node_ready(deployment: Deployment, node_id: str) -> int:
    """Converge every pending or creating workspace of the node; returns how many.

    Called after the node's ready callback or first heartbeat, and again on a repeated
    ready (the agent restarted, e.g. with the edge), which may find workspaces whose
    hand-over was interrupted: they converge now rather than at cron's next run. A failure
    is logged and never fails the callback.
    """
    node = await nodes.find_node(deployment, node_id)
    if node is None or node.status != NodeStatus.RUNNING or node.agent_url is None:
        return 0
    waiting = await store.where(
        deployment, "node_id = ? AND status IN ('pending', 'creating')", node_id
    )
    try:
        for workspace in waiting:
            await boot_log.step(
                deployment, workspace.id, "node", "succeeded", f"Node {node_id} is ready."
            )
            await converge(deployment, workspace, node)
    except SamError as exc:
        event(log, "node.hand_over_failed", level=logging.WARNING, node_id=node_id, error=exc.code)
    return len(waiting)


async def _current(deployment: Deployment, workspace_id: str) -> Workspace:
    workspace = await store.find(deployment, workspace_id)
    if workspace is None:
        raise store.WorkspaceNotFound()
    return workspace
