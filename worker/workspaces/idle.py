"""Idle workspaces: stopped when nobody uses them, and never at the cost of unsaved work.

    await record_activity(deployment, node_id, reports)
        the node's heartbeat (wire/callbacks.py WorkspaceActivity): each of its workspaces'
        last use (now - idle_seconds; now while an agent prompts or someone watches) and
        whether it is in use at this beat. Another node's workspace is never touched.
    await stop_idle(deployment) -> int
        cron: every running workspace unused for SAM_IDLE_TIMEOUT_SECONDS (since its last
        use, else since it became ready) and not in use at the last beat, settled:

    its checkout clean (GET /workspaces/{id}/git on its agent)
        → stopped (container stopped, files kept) with stopped_reason
          "stopped after 30 min without terminal or agent activity"
    uncommitted or unpushed work, the repository on GitHub through SAM's App
        → pushed by the agent, outside the container, to sam/wip/<workspace id>-<UTC time
          of its last use> with a contents:write token for that repository alone
          (worker/github/git_tokens.py); the
          branch kept in wip_branch and told in its live chats; then stopped as above
    otherwise (no GitHub, the push or the git check failed)
        → left running, needs_attention saying why and what to do; the node keeps its
          claim, and a node holding such a workspace is never torn down automatically
          (worker/nodes/service.py holds_unsaved_work; the warm window checks it)

The branch is named after the idle period, so a sweep that runs again after a crash
between the push and its record pushes to the same branch (the agent's push is
idempotent) instead of making another. needs_attention is cleared when the workspace is in
use again (a viewer, a prompting agent) or relaunched; a stopped flagged workspace keeps it.
"""

import logging
from datetime import UTC, datetime

from pydantic import ValidationError

from wire.callbacks import WorkspaceActivity
from wire.git import GitPush, GitPushResult, GitState
from worker.chats import workspace_events
from worker.db import iso
from worker.deployment import Deployment
from worker.errors import SamError, UpstreamFailed
from worker.github.git_tokens import github_repository, write_token
from worker.logs import event
from worker.nodes import service as nodes
from worker.states import NodeStatus, WorkspaceStatus
from worker.workspaces import agent_client, service, store
from worker.workspaces.model import Workspace

log = logging.getLogger("sam.cron.idle")

WIP_PREFIX = "sam/wip/"
AUTHOR_NAME = "SAM"
# A time a branch name may hold: no ':' (git refuses it), sortable.
BRANCH_TIME_FORMAT = "%Y%m%dT%H%M%SZ"
_LEFT_RUNNING = (
    "It was left running, and its node too, until you decide: push the work yourself, "
    "or delete the workspace to discard it."
)


def idle_reason(timeout_seconds: float) -> str:
    return f"stopped after {_duration(timeout_seconds)} without terminal or agent activity"


# --- the heartbeat ---------------------------------------------------------------------------


async def record_activity(
    deployment: Deployment, node_id: str, reports: list[WorkspaceActivity]
) -> None:
    now = deployment.now()
    statements = []
    for report in reports:
        idle = 0.0 if report.in_use else report.idle_seconds
        last = None if idle is None else iso(now - idle)
        statements.append(
            deployment.env.DATABASE.prepare(
                "UPDATE workspaces SET in_use = ?1, "
                "last_active_at = CASE WHEN ?2 IS NOT NULL AND (last_active_at IS NULL "
                "OR last_active_at < ?2) THEN ?2 ELSE last_active_at END, "
                "needs_attention = CASE WHEN ?1 = 1 THEN NULL ELSE needs_attention END "
                "WHERE id = ?3 AND node_id = ?4"
            ).bind(int(report.in_use), last, report.id, node_id)
        )
    if statements:
        await deployment.env.DATABASE.batch(statements)


# --- the sweep -------------------------------------------------------------------------------


async def stop_idle(deployment: Deployment) -> int:
    """Settle every idle workspace; how many were stopped. A failure for one is logged
    and left for the next run."""
    stopped = 0
    for workspace in await idle_workspaces(deployment):
        try:
            stopped += await _settle(deployment, workspace)
        except SamError as exc:
            event(
                log,
                "workspace.idle_failed",
                level=logging.WARNING,
                workspace_id=workspace.id,
                error=exc.code,
            )
    return stopped


async def idle_workspaces(deployment: Deployment) -> list[Workspace]:
    """Running, not in use at the last beat, not flagged, and unused since the timeout."""
    cutoff = iso(deployment.now() - deployment.config.idle_timeout_seconds)
    return await store.where(
        deployment,
        "status = 'running' AND in_use = 0 AND needs_attention IS NULL "
        "AND COALESCE(last_active_at, ready_at, updated_at) < ?",
        cutoff,
    )


async def _settle(deployment: Deployment, workspace: Workspace) -> int:
    if workspace.node_id is None:
        return 0
    node = await nodes.find_node(deployment, workspace.node_id)
    if node is None or node.status != NodeStatus.RUNNING or node.agent_url is None:
        return 0  # nothing to ask; its node's own sweeps deal with it
    idle_for = _duration(deployment.config.idle_timeout_seconds)
    answer = await agent_client.call(deployment, node, "GET", f"/workspaces/{workspace.id}/git")
    if answer.status != 200:
        return await _flag(
            deployment,
            workspace,
            f"Idle for {idle_for}, but SAM could not tell whether it holds unsaved work "
            f"({answer.message}). {_LEFT_RUNNING}",
        )
    try:
        state = GitState.model_validate(answer.body)
    except ValidationError:
        raise agent_client.AgentBadAnswer(node.id, "GET /workspaces/{id}/git") from None
    if not state.dirty and not state.unpushed:  # None: no commit at all, so nothing to save
        return await _stop(deployment, workspace, None)
    branch = wip_branch(workspace)
    config = deployment.config
    if config.github_app is None or github_repository(config, workspace.repository) is None:
        return await _flag(
            deployment,
            workspace,
            f"Idle for {idle_for} with uncommitted or unpushed work that SAM cannot save: "
            f"its repository is not on GitHub through SAM's app. {_LEFT_RUNNING}",
        )
    try:
        token = await write_token(deployment, workspace.user_id, workspace.repository)
        push = GitPush(
            branch=branch,
            message=f"Work in progress, saved by SAM after {idle_for} idle",
            remote_url=workspace.repository,
            token=token.token,
            author_name=AUTHOR_NAME,
            author_email=f"sam@{config.domain.split(':')[0]}",
        )
        pushed = await agent_client.call(
            deployment, node, "POST", f"/workspaces/{workspace.id}/git/push", push
        )
        if pushed.status != 200 or not _pushed(pushed.body):
            raise UpstreamFailed("agent_refused", pushed.message)
    except (SamError, ValidationError) as exc:
        why = exc.message if isinstance(exc, SamError) else exc.errors()[0]["msg"]
        return await _flag(
            deployment,
            workspace,
            f"Idle for {idle_for} with unsaved work; saving it to {branch} failed "
            f"({why}). {_LEFT_RUNNING}",
        )
    event(log, "workspace.wip_pushed", workspace_id=workspace.id, branch=branch)
    await store.update(deployment, workspace.id, wip_branch=branch)
    await workspace_events.chats_told(
        deployment,
        workspace.user_id,
        workspace.id,
        "idle",
        f"The workspace was idle for {idle_for}: SAM saved its unsaved work to the branch "
        f"{branch} and stopped it.",
    )
    return await _stop(deployment, workspace, branch)


def _pushed(body: dict) -> bool:
    try:
        return GitPushResult.model_validate(body).pushed
    except ValidationError:
        return False


def wip_branch(workspace: Workspace) -> str:
    """sam/wip/<workspace id>-<UTC time of its last use>: one branch per idle period."""
    since = workspace.last_active_at or workspace.ready_at or workspace.updated_at
    moment = datetime.strptime(since, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=UTC)
    return f"{WIP_PREFIX}{workspace.id}-{moment.strftime(BRANCH_TIME_FORMAT)}"


async def _stop(deployment: Deployment, workspace: Workspace, branch: str | None) -> int:
    stopped = await service.stop(deployment, workspace.user_id, workspace.id)
    if stopped.status != WorkspaceStatus.STOPPED:
        return 0
    reason = idle_reason(deployment.config.idle_timeout_seconds)
    if branch is not None:
        reason += f"; its unsaved work is on the branch {branch}"
    await store.update(deployment, workspace.id, stopped_reason=reason)
    event(log, "workspace.idle_stopped", workspace_id=workspace.id, wip_branch=branch)
    return 1


async def _flag(deployment: Deployment, workspace: Workspace, why: str) -> int:
    await store.update(deployment, workspace.id, needs_attention=why[: store.MAX_ERROR_CHARS])
    event(log, "workspace.needs_attention", level=logging.WARNING, workspace_id=workspace.id)
    return 0


def _duration(seconds: float) -> str:
    if seconds >= 60:
        return f"{round(seconds / 60)} min"
    return f"{round(seconds)} s"
