"""The workspaces service: a user's workspaces in D1, placed on nodes, run by their agents.

For the owner (anyone else's workspace is a 404, exactly like a made-up id):
    create(deployment, user, spec[, workspace_id])
                                       validated before anything runs; row pending; a node
                                       claimed or provisioned (worker/workspaces/dispatch.py);
                                       handed to the agent once the node is up → creating.
                                       With a caller-chosen id it is idempotent: an existing
                                       workspace of that id is returned as it is
    list_workspaces / get(deployment, user_id[, id])
    stop(deployment, user_id, id)      agent stop → stopped; the node claim released (the
                                       node goes warm when it was the last); its chats
                                       stopped (worker/chats/workspace_events.py)
    restart(deployment, user_id, id)   a stopped workspace: its node claimed again (or, if
                                       that node is gone, a new one) → creating; a failed
                                       one is rebuilt (its old checkout may be what failed)
    rebuild(deployment, user_id, id)   a running, stopped or failed workspace: the repository
                                       fetched again (a fresh clone), the container made
                                       anew, the lifecycle commands run again → creating
    delete(deployment, user_id, id)    agent delete, claim released, row and boot log gone,
                                       its chats stopped

For the node's agent (callbacks, already scoped to the workspace's node by the route):
    agent_ready / agent_failed / agent_boot_log
                                       ready and failed wake the runs of the chats waiting
                                       on the workspace (worker/chats/workspace_events.py)

For the ws-{id} proxy:
    route_for(deployment, id) -> Route(workspace, node) | None
"""

import logging
from typing import Any, NamedTuple

from worker.auth.users import User
from worker.chats import workspace_events
from worker.db import iso
from worker.deployment import Deployment
from worker.errors import Conflict, SamError, UpstreamFailed
from worker.logs import event
from worker.nodes import pool as node_pool
from worker.nodes import service as nodes
from worker.nodes.model import Node, Provider
from worker.nodes.provisioning import check_available
from worker.states import NodeStatus, WorkspaceStatus
from worker.workspaces import agent_client, boot_log, local_paths, store
from worker.workspaces.dispatch import PROVISIONING, agent_ready, converge, place
from worker.workspaces.model import Workspace, new_workspace_id
from worker.workspaces.spec import (
    validate_branch,
    validate_name,
    validate_repository,
    validate_size,
    validate_trusted,
)

log = logging.getLogger("sam.workspaces")

_W = WorkspaceStatus
WorkspaceNotFound = store.WorkspaceNotFound
MAX_HINT_CHARS = 500


class Route(NamedTuple):
    """Where a workspace's traffic goes: unpacks as `workspace, node = route`."""

    workspace: Workspace  # .user_id (the owner), .node_id, .status
    node: Node | None  # None until placed (or after its node was deleted); .agent_url


class WorkspaceBusy(Conflict):
    def __init__(self, workspace: Workspace, doing: str, advice: str) -> None:
        super().__init__(
            "invalid_state_transition",
            f"Workspace {workspace.id} is {workspace.status}; it cannot be {doing} now. {advice}",
        )


# --- reads ---------------------------------------------------------------------------------


async def find_workspace(deployment: Deployment, workspace_id: str) -> Workspace | None:
    """Any user's workspace: for the proxy, callbacks (scoped by their token) and cron."""
    return await store.find(deployment, workspace_id)


async def route_for(deployment: Deployment, workspace_id: str) -> Route | None:
    """The workspace and its node, for the ws-{id} proxy; None for an unknown id.

    The caller checks who may use it (`route.workspace.user_id`), its status, and that
    `route.node.agent_url` is set (None: the node's agent has not reported ready).
    """
    workspace = await store.find(deployment, workspace_id)
    if workspace is None:
        return None
    node = (
        None if workspace.node_id is None else await nodes.find_node(deployment, workspace.node_id)
    )
    return Route(workspace, node)


async def get(deployment: Deployment, user_id: str, workspace_id: str) -> Workspace:
    return await store.get(deployment, user_id, workspace_id)


async def list_workspaces(deployment: Deployment, user_id: str) -> list[Workspace]:
    return await store.list_for(deployment, user_id)


# --- the owner's operations ----------------------------------------------------------------


async def create(
    deployment: Deployment, user: User, spec: dict[str, Any], workspace_id: str | None = None
) -> Workspace:
    """A new workspace of `user`; returns it pending or creating (never waits for a VM).

    `workspace_id`: chosen by the caller (a TaskRunner step that may run again after a
    crash); a workspace of that id already there is returned unchanged (the owner's only).

    `spec`: {repository, branch?, name?, provider: "local"|"hetzner", size?,
    trusted_devcontainer?}. Every field is checked before a row, a node or a command exists
    (400 invalid_workspace_spec); a local path also against the roots this user may use
    (worker/workspaces/local_paths.py).
    """
    provider = Provider(spec["provider"])
    repository = validate_repository(spec.get("repository"), provider)
    branch = validate_branch(spec.get("branch"))
    name = validate_name(spec.get("name"), repository)
    size = validate_size(spec.get("size"))
    check_available(deployment, provider)  # e.g. local outside `sam dev`: 400 before any row
    trusted = validate_trusted(spec.get("trusted_devcontainer"))
    if repository.startswith("/"):
        repository = await local_paths.confined(deployment, user, repository)
    user_id = user.id
    if workspace_id is not None and (existing := await store.find(deployment, workspace_id)):
        if existing.user_id != user_id:
            raise WorkspaceNotFound()
        return existing
    workspace = await store.insert(
        deployment,
        workspace_id or new_workspace_id(),
        user_id,
        name,
        repository,
        branch,
        str(provider),
        size,
        trusted_devcontainer=trusted,
    )
    event(log, "workspace.created", workspace_id=workspace.id, user=user_id, provider=provider)
    await boot_log.step(deployment, workspace.id, "request", "succeeded", "Workspace requested.")
    return await place(deployment, workspace)


async def stop(deployment: Deployment, user_id: str, workspace_id: str) -> Workspace:
    """Stop the container (kept on its node, with its files) and release the node claim."""
    workspace = await store.get(deployment, user_id, workspace_id)
    if workspace.status == _W.STOPPED:
        return workspace
    if workspace.status not in (_W.RUNNING, _W.ERROR, _W.PENDING):
        raise WorkspaceBusy(workspace, "stopped", "Wait until it is running, or delete it.")
    workspace = await store.set_status(deployment, workspace, _W.STOPPING)
    node = await _node_of(deployment, workspace)
    if node is not None and node.agent_url is not None and workspace.dispatched_at is not None:
        try:
            answer = await agent_client.call(
                deployment, node, "POST", f"/workspaces/{workspace.id}/stop"
            )
        except SamError as exc:
            await store.set_status(deployment, workspace, _W.ERROR, error_message=exc.message)
            raise
        if answer.status not in (200, 404):  # 404: the node no longer has it; stopped too
            message = f"The agent could not stop the workspace: {answer.message}"
            await store.set_status(deployment, workspace, _W.ERROR, error_message=message)
            raise UpstreamFailed("agent_refused", message)
    workspace = await store.set_status(deployment, workspace, _W.STOPPED)
    if workspace.node_id is not None:
        await node_pool.release(deployment, workspace.node_id, workspace.id)
    await boot_log.step(deployment, workspace.id, "stop", "succeeded", "Workspace stopped.")
    await workspace_events.chats_stopped(deployment, workspace.user_id, workspace.id)
    event(log, "workspace.stopped", workspace_id=workspace.id)
    return workspace


async def restart(deployment: Deployment, user_id: str, workspace_id: str) -> Workspace:
    """Start a stopped workspace again, on its node if that node still has room for it
    (its files are there), else on another (cloned afresh). Starting a failed workspace
    is a rebuild: rerunning the old checkout would only fail the same way."""
    workspace = await store.get(deployment, user_id, workspace_id)
    if workspace.status == _W.ERROR:
        return await rebuild(deployment, user_id, workspace_id)
    if workspace.status != _W.STOPPED:
        raise WorkspaceBusy(workspace, "restarted", "Only a stopped or failed workspace can.")
    return await _relaunch(deployment, workspace, "restart", "Restart requested.")


async def rebuild(deployment: Deployment, user_id: str, workspace_id: str) -> Workspace:
    """Fetch the repository again (a fresh clone), make the container anew and rerun its
    lifecycle commands: what to do after fixing a repository whose set-up failed."""
    workspace = await store.get(deployment, user_id, workspace_id)
    if workspace.status not in (_W.RUNNING, _W.STOPPED, _W.ERROR):
        raise WorkspaceBusy(
            workspace, "rebuilt", "Wait until it is running, stopped or failed, then rebuild."
        )
    message = "Rebuild requested: fetching the repository again and rerunning its set-up."
    return await _relaunch(deployment, workspace, "rebuild", message)


async def _relaunch(
    deployment: Deployment, workspace: Workspace, step: str, message: str
) -> Workspace:
    """→ creating, on the workspace's node if it still has room for it, else placed anew."""
    workspace = await store.set_status(
        deployment,
        workspace,
        _W.CREATING,
        provisioning_since=iso(deployment.now()),
        error_message=None,
        ready_at=None,
        # Its owner decided: whatever SAM said of its idling no longer holds.
        stopped_reason=None,
        needs_attention=None,
        last_active_at=None,
        in_use=0,
    )
    await boot_log.step(deployment, workspace.id, step, "started", message)
    node = await _node_of(deployment, workspace)
    usable = node is not None and node.status in (NodeStatus.RUNNING, NodeStatus.CREATING)
    if node is not None and usable and await node_pool.claim(deployment, node.id, workspace.id):
        if node.status == NodeStatus.RUNNING and node.agent_url is not None:
            return await converge(deployment, workspace, node, rebuild=step == "rebuild")
        return workspace  # its ready callback hands it over
    if workspace.node_id is not None:  # gone, failed or full: start over elsewhere
        await node_pool.release(deployment, workspace.node_id, workspace.id)
    return await place(deployment, workspace)


async def delete(deployment: Deployment, user_id: str, workspace_id: str) -> None:
    """Delete the workspace everywhere. An agent that cannot be reached on a running,
    healthy node fails the delete (try again); on a node that is failing or gone it is
    skipped (the node's teardown takes the container with it)."""
    workspace = await store.get(deployment, user_id, workspace_id)
    node = await _node_of(deployment, workspace)
    if node is not None and node.agent_url is not None:
        try:
            answer = await agent_client.call(
                deployment, node, "DELETE", f"/workspaces/{workspace.id}"
            )
        except agent_client.AgentUnreachable:
            # A node whose agent is gone for good must not hold the workspace hostage:
            # the node cannot be deleted while the workspace is on it.
            health = node.current_health(deployment.config.node_heartbeat_seconds, deployment.now())
            if node.status == NodeStatus.RUNNING and health != "unhealthy":
                raise
        else:
            if answer.status not in (200, 404):
                raise UpstreamFailed(
                    "agent_refused", f"The agent could not delete it: {answer.message}"
                )
    if workspace.node_id is not None:
        await node_pool.release(deployment, workspace.node_id, workspace.id)
    await store.remove(deployment, workspace.id)
    await boot_log.forget(deployment, workspace.id)
    await workspace_events.chats_stopped(deployment, workspace.user_id, workspace.id)
    event(log, "workspace.deleted", workspace_id=workspace.id)


async def read_boot_log(deployment: Deployment, user_id: str, workspace_id: str) -> dict[str, Any]:
    await store.get(deployment, user_id, workspace_id)
    return await boot_log.read(deployment, workspace_id)


# --- the agent's callbacks -----------------------------------------------------------------


async def agent_ready_callback(
    deployment: Deployment, workspace: Workspace, info: dict[str, Any]
) -> Workspace:
    moved = await agent_ready(deployment, workspace, info)
    if moved is None:
        raise WorkspaceBusy(workspace, "marked running", "The report is stale.")
    await workspace_events.runs_woken(deployment, moved.user_id, moved.id)
    return moved


async def agent_failed(
    deployment: Deployment, workspace: Workspace, report: dict[str, Any]
) -> Workspace:
    """The agent gave up provisioning: → error with its message (and hint)."""
    message = str(report.get("message") or "Provisioning failed.")
    hint = report.get("hint")
    if isinstance(hint, str) and hint:
        message = f"{message} ({hint[:MAX_HINT_CHARS]})"
    step = str(report.get("step") or "provisioning")
    if workspace.status == _W.ERROR:
        await store.update(deployment, workspace.id, error_message=message[: store.MAX_ERROR_CHARS])
        return await store.get(deployment, workspace.user_id, workspace.id)
    if workspace.status not in (*PROVISIONING, _W.RUNNING):
        raise WorkspaceBusy(workspace, "marked failed", "The report is stale.")
    # The agent's own boot log already holds the failed step: no entry of ours.
    failed = await store.move(
        deployment, workspace.id, (*PROVISIONING, _W.RUNNING), _W.ERROR, error_message=message
    )
    if failed is not None and failed.node_id is not None:
        await node_pool.release(deployment, failed.node_id, failed.id)
    event(log, "workspace.failed", level=logging.WARNING, workspace_id=workspace.id, step=step)
    await workspace_events.runs_woken(deployment, workspace.user_id, workspace.id)
    return failed or await store.get(deployment, workspace.user_id, workspace.id)


async def agent_boot_log(
    deployment: Deployment, workspace: Workspace, entry: dict[str, Any]
) -> None:
    await boot_log.append(
        deployment,
        workspace.id,
        boot_log.entry(
            entry["step"],
            entry["status"],
            entry["message"],
            entry.get("detail"),
            entry.get("timestamp") or boot_log.timestamp_of(deployment.now()),
            source=boot_log.Source.AGENT,
        ),
    )


async def _node_of(deployment: Deployment, workspace: Workspace) -> Node | None:
    return (
        None if workspace.node_id is None else await nodes.find_node(deployment, workspace.node_id)
    )
