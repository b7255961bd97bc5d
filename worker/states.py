"""Node, workspace and node-lifecycle states, and the one place a state change is checked.

    NodeStatus       pending → creating → running → stopping → stopped, plus error
    WorkspaceStatus  pending → creating → running → stopping → stopped, plus error
    Lifecycle        active ⇄ warm → destroying   (the NodeLifecycle Durable Object)
    RunStatus        starting → active → stopped, plus failed   (the TaskRunner Durable Object)
    TaskStatus       queued → running → completed | failed | cancelled   (worker/tasks/)
    NodeHealth       healthy / stale / unhealthy, from the age of the last heartbeat

Nodes and workspaces share the six states of wire/states.py (which the agent reports too);
each kind has exactly one allowed-transitions table; `transition(kind, current, new)`
is the only check, so a state change that the table does not allow is refused the same
way everywhere (`InvalidTransition`, a Conflict with the code `invalid_state_transition`).
Staying in the same state is not a transition: callers that want idempotency (a repeated
ready callback) check for it first.
"""

from enum import StrEnum

from wire.states import LifecycleState, NodeHealth
from worker.errors import InvalidTransition

NodeStatus = LifecycleState
WorkspaceStatus = LifecycleState


class Lifecycle(StrEnum):
    """The warm-pool state a node's NodeLifecycle object keeps (not stored in D1)."""

    ACTIVE = "active"  # may hold workspaces; claims are accepted up to capacity
    WARM = "warm"  # no workspaces; kept for reuse until the warm window ends
    DESTROYING = "destroying"  # VM and DNS record being deleted; final


class RunStatus(StrEnum):
    """A TaskRunner run (durable_objects/task_runner.py)."""

    STARTING = "starting"  # its steps run: workspace, workspace ready, agent session, linked
    ACTIVE = "active"  # conversation mode: its session takes prompts, stop, permission answers
    STOPPED = "stopped"  # stopped on request, or its workspace was stopped or deleted
    FAILED = "failed"  # a step failed for good (its error says why and what to do)


class TaskStatus(StrEnum):
    """A task (worker/tasks/): a message that ends in a pull request."""

    QUEUED = "queued"  # stored; its run not started yet
    RUNNING = "running"  # its run takes the steps (workspace … pull request, link posted)
    COMPLETED = "completed"  # the pull request is open, its link in the chat, workspace stopped
    FAILED = "failed"  # a step failed for good (its error says why and what to do)
    CANCELLED = "cancelled"  # cancelled by its owner, at any step


class Kind(StrEnum):
    NODE = "node"
    WORKSPACE = "workspace"
    LIFECYCLE = "lifecycle"
    RUN = "run"
    TASK = "task"


_N = NodeStatus
NODE_TRANSITIONS: dict[NodeStatus, frozenset[NodeStatus]] = {
    # Deleting is possible from every live state: the delete path goes through stopping.
    _N.PENDING: frozenset({_N.CREATING, _N.STOPPING, _N.ERROR}),
    _N.CREATING: frozenset({_N.RUNNING, _N.STOPPING, _N.ERROR}),
    _N.RUNNING: frozenset({_N.STOPPING, _N.ERROR}),
    _N.STOPPING: frozenset({_N.STOPPED, _N.ERROR}),
    _N.STOPPED: frozenset(),
    # A node in error can only be torn down; a late ready callback does not revive it,
    # because cron or the provider already gave up on it.
    _N.ERROR: frozenset({_N.STOPPING}),
}

_W = WorkspaceStatus
WORKSPACE_TRANSITIONS: dict[WorkspaceStatus, frozenset[WorkspaceStatus]] = {
    _W.PENDING: frozenset({_W.CREATING, _W.STOPPING, _W.ERROR}),
    _W.CREATING: frozenset({_W.RUNNING, _W.STOPPING, _W.ERROR}),
    # Restart and rebuild go back through creating (the agent answers `creating`).
    _W.RUNNING: frozenset({_W.CREATING, _W.STOPPING, _W.ERROR}),
    _W.STOPPING: frozenset({_W.STOPPED, _W.ERROR}),
    _W.STOPPED: frozenset({_W.CREATING, _W.STOPPING}),
    _W.ERROR: frozenset({_W.CREATING, _W.STOPPING}),
}

_L = Lifecycle
LIFECYCLE_TRANSITIONS: dict[Lifecycle, frozenset[Lifecycle]] = {
    _L.ACTIVE: frozenset({_L.WARM, _L.DESTROYING}),
    _L.WARM: frozenset({_L.ACTIVE, _L.DESTROYING}),
    _L.DESTROYING: frozenset(),
}

_R = RunStatus
RUN_TRANSITIONS: dict[RunStatus, frozenset[RunStatus]] = {
    _R.STARTING: frozenset({_R.ACTIVE, _R.STOPPED, _R.FAILED}),
    _R.ACTIVE: frozenset({_R.STOPPED, _R.FAILED}),
    _R.STOPPED: frozenset(),
    _R.FAILED: frozenset(),
}

_T = TaskStatus
TASK_TRANSITIONS: dict[TaskStatus, frozenset[TaskStatus]] = {
    _T.QUEUED: frozenset({_T.RUNNING, _T.FAILED, _T.CANCELLED}),
    _T.RUNNING: frozenset({_T.COMPLETED, _T.FAILED, _T.CANCELLED}),
    _T.COMPLETED: frozenset(),
    _T.FAILED: frozenset(),
    _T.CANCELLED: frozenset(),
}

_TABLES: dict[Kind, tuple[type[StrEnum], dict]] = {
    Kind.NODE: (NodeStatus, NODE_TRANSITIONS),
    Kind.WORKSPACE: (WorkspaceStatus, WORKSPACE_TRANSITIONS),
    Kind.LIFECYCLE: (Lifecycle, LIFECYCLE_TRANSITIONS),
    Kind.RUN: (RunStatus, RUN_TRANSITIONS),
    Kind.TASK: (TaskStatus, TASK_TRANSITIONS),
}


def allowed(kind: Kind, current: str, new: str) -> bool:
    """Whether the table of `kind` lets `current` become `new`."""
    states, table = _TABLES[kind]
    try:
        return states(new) in table[states(current)]
    except ValueError:
        return False


def transition(kind: Kind, current: str, new: str) -> StrEnum:
    """`new` as its enum if `current → new` is allowed; InvalidTransition if not."""
    if not allowed(kind, current, new):
        raise InvalidTransition(kind, current, new)
    states, _ = _TABLES[kind]
    return states(new)


def sources(kind: Kind, new: str) -> list[str]:
    """Every state that may become `new`: for `UPDATE ... WHERE status IN (...)` guards."""
    states, table = _TABLES[kind]
    target = states(new)
    return sorted(str(state) for state, targets in table.items() if target in targets)


# Health is judged by how many heartbeat intervals have passed since the last beat: one
# missed beat is normal jitter, a few mean trouble, more mean the node is gone.
STALE_AFTER_INTERVALS = 2
UNHEALTHY_AFTER_INTERVALS = 5


def health_for(
    last_beat_epoch: float | None, now_epoch: float, interval_seconds: float
) -> NodeHealth | None:
    """The health of a node whose last heartbeat was at `last_beat_epoch` (None: never)."""
    if last_beat_epoch is None:
        return None
    age = now_epoch - last_beat_epoch
    if age < STALE_AFTER_INTERVALS * interval_seconds:
        return NodeHealth.HEALTHY
    if age < UNHEALTHY_AFTER_INTERVALS * interval_seconds:
        return NodeHealth.STALE
    return NodeHealth.UNHEALTHY
