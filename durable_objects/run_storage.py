"""A TaskRunner's own storage: its run, the run's steps and the controls it delivers.

    run        one row: the spec, the status, the ids its steps' side effects are named by
               (chosen at start, before any step), the stop request, when its alarm is set
    steps      one row a step: pending → running → succeeded | failed, attempts, last detail
    controls   what the API accepted, in order (seq), once by id; `outcome` once delivered

Every write is a synchronous transaction (no await inside), so an RPC and the alarm never
interleave half-way through one. Each method is one such write, or a read.
"""

from collections.abc import Callable
from typing import Any, TypeVar

from worker.chats.run import Control, Run, RunSpec, Step, StepReport, steps_of
from worker.states import Kind, RunStatus, transition

T = TypeVar("T")

SCHEMA = """
CREATE TABLE IF NOT EXISTS run (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    run_id TEXT NOT NULL,
    spec TEXT NOT NULL,
    status TEXT NOT NULL,
    workspace_id TEXT NOT NULL,
    agent_session_id TEXT NOT NULL,
    error TEXT,
    stop_requested INTEGER NOT NULL DEFAULT 0,
    alarm_at REAL,
    created_at REAL NOT NULL,
    updated_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS steps (
    name TEXT PRIMARY KEY,
    status TEXT NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    started_at REAL,
    detail TEXT
);
CREATE TABLE IF NOT EXISTS controls (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    id TEXT NOT NULL UNIQUE,
    body TEXT NOT NULL,
    accepted_at REAL NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    outcome TEXT
);
"""


class RunStorage:
    def __init__(self, storage: Any) -> None:
        self.storage = storage
        storage.sql.exec(SCHEMA)

    # --- reads ---------------------------------------------------------------------------------

    def row(self) -> dict[str, Any] | None:
        rows = self._records("SELECT * FROM run")
        return rows[0] if rows else None

    def current(self) -> dict[str, Any]:
        row = self.row()
        assert row is not None, "the run is read before it was started"
        return row

    def status(self) -> str:
        return self.current()["status"]

    def spec(self) -> RunSpec:
        return RunSpec.model_validate_json(self.current()["spec"])

    def step(self, name: Step) -> dict[str, Any]:
        return self._records("SELECT * FROM steps WHERE name = ?", str(name))[0]

    def pending_controls(self) -> list[tuple[int, Control, int]]:
        """(seq, control, attempts) of what the agent has not taken yet, in order."""
        rows = self._sql(
            "SELECT seq, body, attempts FROM controls WHERE outcome IS NULL ORDER BY seq"
        )
        return [(seq, Control.model_validate_json(body), attempts) for seq, body, attempts in rows]

    def report(self) -> dict:
        """The run as `Run` (worker/chats/run.py), dumped for RPC."""
        row = self.current()
        spec = RunSpec.model_validate_json(row["spec"])
        steps = [self.step(name) for name in steps_of(spec.mode)]
        reports = [
            StepReport(
                name=Step(step["name"]),
                status=step["status"],
                attempts=int(step["attempts"]),
                detail=step["detail"],
            )
            for step in steps
        ]
        current = next((r.name for r in reports if r.status in ("pending", "running")), None)
        pending = self._sql("SELECT count(*) FROM controls WHERE outcome IS NULL")[0][0]
        run = Run(
            run_id=row["run_id"],
            mode=spec.mode,
            project_id=spec.project_id,
            chat_id=spec.chat_id,
            status=row["status"],
            step=current if row["status"] == RunStatus.STARTING else None,
            steps=reports,
            workspace_id=row["workspace_id"],
            agent_session_id=row["agent_session_id"],
            error=row["error"],
            pending_controls=int(pending),
            created_at=row["created_at"],
            updated_at=row["updated_at"],
        )
        return run.model_dump(mode="json")

    # --- writes (each one transaction) -----------------------------------------------------------

    def create(self, spec: RunSpec, workspace_id: str, agent_session_id: str, now: float) -> bool:
        """The run, starting, with the ids its steps will use; False: it exists already."""

        def write() -> bool:
            if self.row() is not None:
                return False
            self._sql(
                "INSERT INTO run (id, run_id, spec, status, workspace_id, agent_session_id, "
                "created_at, updated_at) VALUES (1, ?, ?, ?, ?, ?, ?, ?)",
                spec.run_id,
                spec.model_dump_json(),
                str(RunStatus.STARTING),
                workspace_id,
                agent_session_id,
                now,
                now,
            )
            for name in steps_of(spec.mode):
                self._sql("INSERT INTO steps (name, status) VALUES (?, 'pending')", str(name))
            return True

        return self._atomically(write)

    def accept(self, control: Control, now: float) -> None:
        """Keep `control` (a repeat of its id: nothing); a stop is also a stop request."""

        def write() -> None:
            self._sql(
                "INSERT OR IGNORE INTO controls (id, body, accepted_at) VALUES (?, ?, ?)",
                control.id,
                control.model_dump_json(),
                now,
            )
            if control.kind == "stop":
                self._sql("UPDATE run SET stop_requested = 1, updated_at = ?", now)

        self._atomically(write)

    def step_started(self, name: Step, now: float) -> None:
        self._atomically(
            lambda: self._sql(
                "UPDATE steps SET status = 'running', started_at = ? WHERE name = ?",
                now,
                str(name),
            )
        )

    def step_done(self, name: Step, detail: str, now: float) -> None:
        self._step_update(name, "status = 'succeeded', detail = ?", detail, now)

    def step_noted(self, name: Step, detail: str, now: float) -> None:
        self._step_update(name, "detail = ?", detail, now)

    def step_retried(self, name: Step, detail: str, now: float) -> int:
        """One more failed attempt of `name`; how many there have been."""
        self._step_update(name, "attempts = attempts + 1, detail = ?", detail, now)
        return int(self.step(name)["attempts"])

    def failed(self, name: str, reason: str, now: float) -> None:
        def write() -> None:
            self._sql(
                "UPDATE steps SET status = 'failed', detail = ? WHERE name = ?", reason, str(name)
            )
            self._move(RunStatus.FAILED, now, reason)

        self._atomically(write)

    def moved(self, new: RunStatus, now: float, error: str | None = None) -> None:
        self._atomically(lambda: self._move(new, now, error))

    def stopped(self, reason: str, now: float) -> None:
        """→ stopped; what was still waiting to be delivered never will be."""

        def write() -> None:
            self._move(RunStatus.STOPPED, now, reason)
            self._sql("UPDATE controls SET outcome = 'stopped' WHERE outcome IS NULL")

        self._atomically(write)

    def control_attempted(self, seq: int) -> None:
        self._atomically(
            lambda: self._sql("UPDATE controls SET attempts = attempts + 1 WHERE seq = ?", seq)
        )

    def control_done(self, seq: int, outcome: str) -> None:
        self._atomically(
            lambda: self._sql("UPDATE controls SET outcome = ? WHERE seq = ?", outcome, seq)
        )

    def alarm_set(self, at: float) -> None:
        self._atomically(lambda: self._sql("UPDATE run SET alarm_at = ?", at))

    # --- plumbing --------------------------------------------------------------------------------

    def _step_update(self, name: Step, assignments: str, detail: str, now: float) -> None:
        def write() -> None:
            self._sql(f"UPDATE steps SET {assignments} WHERE name = ?", detail, str(name))
            self._sql("UPDATE run SET updated_at = ?", now)

        self._atomically(write)

    def _move(self, new: RunStatus, now: float, error: str | None) -> None:
        current = self.status()
        if current == new:
            return
        transition(Kind.RUN, current, new)
        self._sql("UPDATE run SET status = ?, error = ?, updated_at = ?", str(new), error, now)

    def _records(self, query: str, *bindings: Any) -> list[dict[str, Any]]:
        cursor = self.storage.sql.exec(query, *bindings)
        names = list(cursor.columnNames)
        return [dict(zip(names, list(row), strict=True)) for row in cursor.raw()]

    def _sql(self, query: str, *bindings: Any) -> list[list[Any]]:
        return [list(row) for row in self.storage.sql.exec(query, *bindings).raw()]

    def _atomically(self, write: Callable[[], T]) -> T:
        # The result is kept on the Python side: on Cloudflare a value returned through
        # transactionSync crosses into JS and back.
        box: list[T] = []
        self.storage.transactionSync(lambda: box.append(write()))
        return box[0]
