"""SAM's own cron handler, fired through the local edge's scheduled hook."""

import sqlite3

from tests.support.edge import Edge


def test_cron_prunes_error_reports_past_retention(edge: Edge) -> None:
    with edge.client() as client:
        kept = client.post("/api/errors", json={"source": "agent", "message": "recent"}).json()[
            "id"
        ]
    database = edge.data_dir / "d1" / "sam-observability.sqlite"
    with sqlite3.connect(database) as db:
        old = db.execute(
            "INSERT INTO errors (source, message, occurred_at) VALUES "
            "('browser', 'ancient', strftime('%Y-%m-%dT%H:%M:%fZ', 'now', '-31 days'))"
        ).lastrowid

    with edge.client() as client:
        assert client.get("/__scheduled", params={"cron": "*/5 * * * *"}).status_code == 200

    with sqlite3.connect(database) as db:
        ids = {row[0] for row in db.execute("SELECT id FROM errors")}
    assert kept in ids
    assert old not in ids
    assert "cron.done cron=*/5 * * * * errors_pruned=1" in edge.log()
