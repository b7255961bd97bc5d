"""How recently each workspace was used, for the heartbeat (wire/callbacks.py
WorkspaceActivity) and through it the control plane's idle sweep.

Used means: terminal input (agent/terminals/manager.py touches on every input frame), an
agent session's frames (agent/sessions/manager.py touches on each stored frame), an agent
session prompting now (busy even when silent), or a viewer connected now (a terminal
socket or an agent-session viewer). Times are monotonic: the report carries seconds since,
never a time of day.
"""

import time
from collections.abc import Callable, Iterable
from typing import Protocol

from agent.terminals.session import Clock
from wire.callbacks import WorkspaceActivity


class Activity:
    """When each workspace last saw terminal input or agent activity."""

    def __init__(self, clock: Clock = time.monotonic) -> None:
        self._clock = clock
        self._last: dict[str, float] = {}

    def touch(self, workspace_id: str) -> None:
        self._last[workspace_id] = self._clock()

    def idle_seconds(self, workspace_id: str) -> float | None:
        """Seconds since the last activity; None: none since the agent started."""
        last = self._last.get(workspace_id)
        return None if last is None else max(0.0, self._clock() - last)


class Presence(Protocol):
    """What a subsystem knows of a workspace's use right now."""

    def viewers(self, workspace_id: str) -> int: ...


class AgentPresence(Presence, Protocol):
    def busy(self, workspace_id: str) -> bool: ...


def reporter(
    activity: Activity,
    running: Callable[[], Iterable[str]],
    terminals: Presence,
    sessions: AgentPresence,
) -> Callable[[], list[dict[str, object]]]:
    """The heartbeat's `workspaces`: one entry per running workspace of the node."""

    def report() -> list[dict[str, object]]:
        return [
            WorkspaceActivity(
                id=workspace_id,
                idle_seconds=activity.idle_seconds(workspace_id),
                agent_busy=sessions.busy(workspace_id),
                viewers=terminals.viewers(workspace_id) + sessions.viewers(workspace_id),
            ).model_dump()
            for workspace_id in running()
        ]

    return report
