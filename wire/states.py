"""The six states a node or a workspace goes through, declared once for both sides, and the
health the control plane judges a node's heartbeats by.

    pending → creating → running → stopping → stopped, plus error

The control plane keeps nodes and workspaces in these states (its allowed-transitions
tables are in worker/states.py) and the agent keeps its workspaces in them (its own table
is in agent/workspaces/manager.py); the agent's API reports them in `state`
(docs/protocols/agent-api.md).
"""

from enum import StrEnum


class LifecycleState(StrEnum):
    PENDING = "pending"
    CREATING = "creating"
    RUNNING = "running"
    STOPPING = "stopping"
    STOPPED = "stopped"
    ERROR = "error"


class NodeHealth(StrEnum):
    """From the age of the node's last heartbeat (worker/nodes/sweeps.py judges it)."""

    HEALTHY = "healthy"
    STALE = "stale"
    UNHEALTHY = "unhealthy"
