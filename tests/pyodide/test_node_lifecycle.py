"""The NodeLifecycle Durable Object under real Pyodide: RPC through the SDK's conversions,
SQL storage with transactionSync, and its alarm."""

from tests.pyodide.harness import PyodideWorker

BINDING = "NODE_LIFECYCLE"
WARM_TIMEOUT_SECONDS = 30 * 60  # worker.config's default; wrangler.toml sets none


def test_the_last_release_starts_the_warm_window_and_its_alarm_tears_down(
    pyodide_worker: PyodideWorker,
) -> None:
    node = "node-py-1"
    claimed = pyodide_worker.durable_object(BINDING, node, "try_claim", node, "ws-1", 1000.0)
    assert claimed["claimed"] is True
    assert claimed["workspaces"] == ["ws-1"]

    warm = pyodide_worker.durable_object(BINDING, node, "release", node, "ws-1", 1000.0)
    assert warm["state"] == "warm"
    assert warm["warm_until"] == 1000.0 + WARM_TIMEOUT_SECONDS
    assert pyodide_worker.alarm_at(BINDING, node) == warm["warm_until"] * 1000

    assert pyodide_worker.run_alarm(BINDING, node)

    final = pyodide_worker.durable_object(BINDING, node, "status", node)
    assert final["state"] == "destroying"
    assert final["torn_down"] is True
    assert pyodide_worker.alarm_at(BINDING, node) is None


def test_a_claim_beyond_capacity_is_refused(pyodide_worker: PyodideWorker) -> None:
    node = "node-py-2"
    capacity = pyodide_worker.durable_object(BINDING, node, "status", node)["capacity"]
    for index in range(capacity):
        pyodide_worker.durable_object(BINDING, node, "try_claim", node, f"ws-{index}", 1.0)

    refused = pyodide_worker.durable_object(BINDING, node, "try_claim", node, "ws-extra", 1.0)

    assert refused["claimed"] is False
    assert len(refused["workspaces"]) == capacity
