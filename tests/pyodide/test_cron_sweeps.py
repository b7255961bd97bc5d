"""Cron's node sweeps under real Pyodide, on raw-binding `scheduled` arguments: D1 through
workerd's implementation and the `local` provider's service binding (the launcher double)."""

from tests.pyodide.callers import APP, new_node, sign_in
from tests.pyodide.harness import PyodideWorker
from tests.pyodide.loopback_nodes import NodeLauncherDouble
from tests.support.wrangler import WRANGLER_CONFIG

CRON = WRANGLER_CONFIG["triggers"]["crons"][0]
LONG_AGO = "2000-01-01T00:00:00.000Z"


def test_cron_fails_a_node_stuck_provisioning_and_deletes_orphan_machines(
    development_worker: PyodideWorker, node_launcher: NodeLauncherDouble
) -> None:
    worker = development_worker
    owner = sign_in(worker, "pycron")
    stuck = new_node(worker, node_launcher, owner)
    # The Worker's clock is the system's under the harness: the node is made old instead.
    worker.d1("DATABASE", "UPDATE nodes SET created_at = ? WHERE id = ?", LONG_AGO, stuck)
    node_launcher.run("n-orphan", owner.id)

    worker.scheduled(CRON)

    [row] = worker.d1("DATABASE", "SELECT status, error_message FROM nodes WHERE id = ?", stuck)
    assert row["status"] == "error"
    assert "did not call back" in row["error_message"]
    assert stuck not in node_launcher.nodes, "its machine was released"
    assert "n-orphan" not in node_launcher.nodes
    shown = worker.fetch(f"{APP}/api/nodes/{stuck}", headers=owner.session_headers())
    assert shown.json()["status"] == "error"
