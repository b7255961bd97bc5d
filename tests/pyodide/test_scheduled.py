"""`Default.scheduled` under real Pyodide: workerd passes raw bindings as `env`."""

from tests.pyodide.harness import PyodideWorker
from tests.support.wrangler import WRANGLER_CONFIG


def test_the_cron_prunes_old_errors(pyodide_worker: PyodideWorker) -> None:
    old, recent = "2000-01-01T00:00:00.000Z", "2999-01-01T00:00:00.000Z"
    for occurred_at in (old, recent):
        pyodide_worker.d1(
            "OBSERVABILITY_DATABASE",
            "INSERT INTO errors (source, message, occurred_at) VALUES ('api', 'boom', ?)",
            occurred_at,
        )

    pyodide_worker.scheduled(WRANGLER_CONFIG["triggers"]["crons"][0])

    left = pyodide_worker.d1("OBSERVABILITY_DATABASE", "SELECT occurred_at FROM errors")
    assert [row["occurred_at"] for row in left] == [recent]
