"""The NodeLifecycle Durable Object under real Pyodide: RPC through the SDK's conversions,
SQL storage with transactionSync, and its alarm. Every public RPC method is called (the
last test checks that against the class)."""

import inspect
from typing import Any

from durable_objects.node_lifecycle import TEARDOWN_RETRY_SECONDS, NodeLifecycle
from tests.pyodide.harness import PyodideWorker

BINDING = "NODE_LIFECYCLE"
WARM_TIMEOUT_SECONDS = 30 * 60  # worker.config's default; wrangler.toml sets none
# Handlers workerd calls itself, not RPC methods.
HANDLERS = {"alarm", "fetch"}
CALLED: set[str] = set()


def rpc(worker: PyodideWorker, node: str, method: str, *args: Any) -> Any:
    """`method` on the node's object, through the harness's RPC path (recorded)."""
    answer = worker.durable_object(BINDING, node, method, *args)
    CALLED.add(method)
    return answer


def test_the_last_release_starts_the_warm_window_and_its_alarm_tears_down(
    pyodide_worker: PyodideWorker,
) -> None:
    node = "node-py-1"
    claimed = rpc(pyodide_worker, node, "try_claim", node, "ws-1", 1000.0)
    assert claimed["claimed"] is True
    assert claimed["workspaces"] == ["ws-1"]

    warm = rpc(pyodide_worker, node, "release", node, "ws-1", 1000.0)
    assert warm["state"] == "warm"
    assert warm["warm_until"] == 1000.0 + WARM_TIMEOUT_SECONDS
    assert pyodide_worker.alarm_at(BINDING, node) == warm["warm_until"] * 1000

    assert pyodide_worker.run_alarm(BINDING, node)

    final = rpc(pyodide_worker, node, "status", node)
    assert final["state"] == "destroying"
    assert final["torn_down"] is True
    assert pyodide_worker.alarm_at(BINDING, node) is None


def test_a_claim_beyond_capacity_is_refused(pyodide_worker: PyodideWorker) -> None:
    node = "node-py-2"
    capacity = rpc(pyodide_worker, node, "status", node)["capacity"]
    for index in range(capacity):
        rpc(pyodide_worker, node, "try_claim", node, f"ws-{index}", 1.0)

    refused = rpc(pyodide_worker, node, "try_claim", node, "ws-extra", 1.0)

    assert refused["claimed"] is False
    assert len(refused["workspaces"]) == capacity


def test_a_delete_destroys_an_idle_node_and_retries_until_torn_down(
    pyodide_worker: PyodideWorker,
) -> None:
    node = "node-py-3"
    destroying = rpc(pyodide_worker, node, "destroy", node, 1000.0)
    assert destroying["destroying"] is True
    assert destroying["state"] == "destroying"
    assert pyodide_worker.alarm_at(BINDING, node) == (1000.0 + TEARDOWN_RETRY_SECONDS) * 1000

    done = rpc(pyodide_worker, node, "destroyed", node)

    assert done["torn_down"] is True
    assert pyodide_worker.alarm_at(BINDING, node) is None


def test_a_delete_waits_while_workspaces_are_held(pyodide_worker: PyodideWorker) -> None:
    node = "node-py-4"
    rpc(pyodide_worker, node, "try_claim", node, "ws-held", 1.0)

    refused = rpc(pyodide_worker, node, "destroy", node, 2.0)

    assert refused["destroying"] is False
    assert refused["workspaces"] == ["ws-held"]


def test_cron_expires_a_warm_window_that_has_passed(pyodide_worker: PyodideWorker) -> None:
    node = "node-py-5"
    rpc(pyodide_worker, node, "try_claim", node, "ws-1", 1000.0)
    rpc(pyodide_worker, node, "release", node, "ws-1", 1000.0)

    early = rpc(pyodide_worker, node, "expire", node, 1000.0 + WARM_TIMEOUT_SECONDS - 1)
    assert early["state"] == "warm"
    expired = rpc(pyodide_worker, node, "expire", node, 1000.0 + WARM_TIMEOUT_SECONDS)

    assert expired["state"] == "destroying"
    assert expired["torn_down"] is True


def test_every_rpc_method_was_called(pyodide_worker: PyodideWorker) -> None:
    pyodide_worker.require_main_module()
    public = {
        name
        for name, member in inspect.getmembers(NodeLifecycle, inspect.iscoroutinefunction)
        if not name.startswith("_") and name not in HANDLERS
    }
    assert public, "NodeLifecycle has RPC methods"
    missed = sorted(public - CALLED)
    assert not missed, f"NodeLifecycle RPC methods never called under real Pyodide: {missed}"
