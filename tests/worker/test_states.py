"""worker/states.py: one transition table per kind, one check, health from heartbeats."""

import itertools

import pytest

from worker.errors import SamError
from worker.http_errors import status_for
from worker.states import (
    LIFECYCLE_TRANSITIONS,
    NODE_TRANSITIONS,
    STALE_AFTER_INTERVALS,
    UNHEALTHY_AFTER_INTERVALS,
    WORKSPACE_TRANSITIONS,
    InvalidTransition,
    Kind,
    Lifecycle,
    NodeHealth,
    NodeStatus,
    WorkspaceStatus,
    allowed,
    health_for,
    sources,
    transition,
)

TABLES = [
    (Kind.NODE, NodeStatus, NODE_TRANSITIONS),
    (Kind.WORKSPACE, WorkspaceStatus, WORKSPACE_TRANSITIONS),
    (Kind.LIFECYCLE, Lifecycle, LIFECYCLE_TRANSITIONS),
]


@pytest.mark.parametrize(("kind", "states", "table"), TABLES)
def test_every_state_has_a_row_and_no_state_moves_to_itself(kind, states, table) -> None:
    assert set(table) == set(states)
    for state, targets in table.items():
        assert state not in targets, f"{kind}: {state} → itself"
        assert not allowed(kind, state, state)


def test_the_designed_node_path_is_allowed_step_by_step() -> None:
    path = ["pending", "creating", "running", "stopping", "stopped"]
    for current, new in itertools.pairwise(path):
        assert transition(Kind.NODE, current, new) == NodeStatus(new)
    for current in ["pending", "creating", "running", "stopping"]:
        assert transition(Kind.NODE, current, "error") is NodeStatus.ERROR


@pytest.mark.parametrize(
    ("current", "new"),
    [
        ("pending", "running"),  # skipped provisioning
        ("running", "creating"),
        ("stopped", "running"),  # a stopped node is gone
        ("error", "running"),  # a late ready does not revive a node cron gave up on
        ("stopped", "error"),
    ],
)
def test_illegal_node_moves_are_a_409(current: str, new: str) -> None:
    with pytest.raises(InvalidTransition) as refused:
        transition(Kind.NODE, current, new)
    assert isinstance(refused.value, SamError)
    assert (status_for(refused.value), refused.value.code) == (409, "invalid_state_transition")
    assert repr(current) in refused.value.message and repr(new) in refused.value.message


def test_workspaces_restart_through_creating_and_can_always_be_stopped() -> None:
    assert allowed(Kind.WORKSPACE, "running", "creating")
    assert allowed(Kind.WORKSPACE, "stopped", "creating")
    assert allowed(Kind.WORKSPACE, "error", "creating")
    for state in ["pending", "creating", "running", "stopped", "error"]:
        assert allowed(Kind.WORKSPACE, state, "stopping"), state
    assert not allowed(Kind.WORKSPACE, "stopped", "running")


def test_the_lifecycle_goes_warm_and_back_and_destroying_is_final() -> None:
    assert allowed(Kind.LIFECYCLE, "active", "warm")
    assert allowed(Kind.LIFECYCLE, "warm", "active")
    assert allowed(Kind.LIFECYCLE, "warm", "destroying")
    assert allowed(Kind.LIFECYCLE, "active", "destroying")
    for state in Lifecycle:
        assert not allowed(Kind.LIFECYCLE, "destroying", state)


@pytest.mark.parametrize("junk", ["", "RUNNING", "running; DROP TABLE nodes", "warm"])
def test_unknown_states_are_never_allowed(junk: str) -> None:
    assert not allowed(Kind.NODE, junk, "error")
    assert not allowed(Kind.NODE, "running", junk)
    with pytest.raises(InvalidTransition):
        transition(Kind.NODE, "running", junk)


def test_sources_are_the_table_read_backwards() -> None:
    assert sources(Kind.NODE, "running") == ["creating"]
    assert sources(Kind.NODE, "stopping") == ["creating", "error", "pending", "running"]
    assert sources(Kind.LIFECYCLE, "active") == ["warm"]
    for kind, states, table in TABLES:
        for new in states:
            assert set(sources(kind, new)) == {str(s) for s in table if new in table[s]}


def test_health_is_judged_in_heartbeat_intervals() -> None:
    interval = 30.0
    beat = 1_000.0
    stale_at = beat + STALE_AFTER_INTERVALS * interval
    unhealthy_at = beat + UNHEALTHY_AFTER_INTERVALS * interval
    assert health_for(None, beat, interval) is None  # never beat: unknown, not unhealthy
    assert health_for(beat, beat, interval) is NodeHealth.HEALTHY
    assert health_for(beat, stale_at - 0.001, interval) is NodeHealth.HEALTHY
    assert health_for(beat, stale_at, interval) is NodeHealth.STALE
    assert health_for(beat, unhealthy_at - 0.001, interval) is NodeHealth.STALE
    assert health_for(beat, unhealthy_at, interval) is NodeHealth.UNHEALTHY
    assert health_for(beat, unhealthy_at + 86_400, interval) is NodeHealth.UNHEALTHY
