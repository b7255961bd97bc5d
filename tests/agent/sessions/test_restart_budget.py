"""The restart budget on an injected clock: the first restart at once, then a doubling
backoff, at most SAM_AGENT_RESTARTS within the window, which slides."""

from pathlib import Path

from agent.sessions.restarts import RestartBudget
from tests.agent.sessions.test_faults import config


def test_restarts_back_off_and_are_bounded_within_a_sliding_window(tmp_path: Path) -> None:
    now = [1000.0]
    cfg = config(
        tmp_path,
        SAM_AGENT_RESTARTS="3",
        SAM_AGENT_RESTART_WINDOW_SECONDS="300",
        SAM_AGENT_RESTART_BACKOFF_SECONDS="2",
    )
    budget = RestartBudget(cfg, clock=lambda: now[0])
    taken = []
    for _ in range(3):
        taken.append(budget.take())
        now[0] += 10
    assert taken == [(1, 0.0), (2, 2.0), (3, 4.0)]
    assert not budget.available()
    now[0] = 1299.9
    assert not budget.available()  # the first restart (at 1000) is still inside the window
    now[0] = 1300.0
    assert budget.available() and budget.take() == (3, 4.0)  # its slot came free


def test_no_restarts_when_the_limit_is_zero(tmp_path: Path) -> None:
    budget = RestartBudget(config(tmp_path, SAM_AGENT_RESTARTS="0"))
    assert not budget.available()
