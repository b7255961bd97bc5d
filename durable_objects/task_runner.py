"""TaskRunner: one Durable Object per run (`idFromName(run id)`), alarm-driven.

    starting ──workspace → workspace_ready → agent_session → linked──▶ active
       │                                                                 │ deliver(prompt |
       └──a step fails for good──▶ failed        stop / workspace gone ──┴─▶ stopped  permission)

Every step is idempotent and its result persisted before the next: the ids a step's side
effect is named by (the workspace id, the agent session id) are chosen and persisted by
`start`, before any step runs, and the other side treats a repeat of the same id as the
same thing (worker/chats/steps.py). A step that is interrupted between its side effect and
its persisted result simply runs again and finds what it made. Transient failures are
retried with backoff (worker/chats/run.py) until the step's timeout; a permanent one ends
the run with a reason, posted to the chat. Each step's start and end are posted to the chat
as `run` messages.

Conversation mode then stays open: `deliver` persists a control (a prompt with its id, a
permission answer, stop) and delivers it to the agent at once when the run is active;
while the agent cannot be reached (or the run is still starting), the controls wait and
the alarm delivers them, in order. A prompt may be delivered more than once (an answer
lost on the way back): the agent takes a prompt id once.

RPC (arguments plain JSON values; `now` is the caller's clock, as NodeLifecycle's):
    start(run: dict, now) -> Run      deliver(run_id, control: dict, now) -> Run
    status(run_id) -> Run | None      cancel(run_id, now) -> Run
"""

import logging
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from worker.projects import chat_data

from wire.chat import ChatStatus
from worker.chats import progress, steps
from worker.chats.run import (
    STEP_TIMEOUT_SECONDS,
    STEP_TITLES,
    STEPS,
    Control,
    Run,
    RunSpec,
    Step,
    StepReport,
    new_agent_session_id,
    retry_delay_seconds,
)
from worker.deployment import Deployment
from worker.errors import Conflict, InvalidInput, NotFound, SamError
from worker.logs import event
from worker.platform import DurableObject
from worker.states import Kind, RunStatus, transition
from worker.workspaces.model import new_workspace_id

log = logging.getLogger("sam.task_runner")

T = TypeVar("T")
_R = RunStatus

_SCHEMA = """
CREATE TABLE IF NOT EXISTS run (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    run_id TEXT NOT NULL,
    spec TEXT NOT NULL,
    status TEXT NOT NULL,
    workspace_id TEXT NOT NULL,
    agent_session_id TEXT NOT NULL,
    error TEXT,
    stop_requested INTEGER NOT NULL DEFAULT 0,
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


class RunNotFound(NotFound):
    def __init__(self, run_id: str) -> None:
        super().__init__("run_not_found", f"There is no run {run_id}.")


class RunEnded(Conflict):
    def __init__(self, run_id: str, status: str) -> None:
        super().__init__(
            "run_ended", f"Run {run_id} is {status}; send the message again to start a new one."
        )


class TaskRunner(DurableObject):
    def __init__(self, ctx: Any, env: Any) -> None:
        super().__init__(ctx, env)
        self.deployment = Deployment.of(env)
        ctx.storage.sql.exec(_SCHEMA)

    # --- RPC -------------------------------------------------------------------------------

    async def start(self, run: dict, now: float) -> dict:
        return await _answering(self._start(run, now))

    async def deliver(self, run_id: str, control: dict, now: float) -> dict:
        return await _answering(self._deliver(run_id, control, now))

    async def cancel(self, run_id: str, now: float) -> dict:
        """Stop the run (its agent session too, if it has one)."""
        return await _answering(self._deliver(run_id, {"id": "cancel", "kind": "stop"}, now))

    async def status(self, run_id: str) -> dict | None:
        row = self._row()
        return None if row is None or row["run_id"] != run_id else self._report()

    async def alarm(self, info: Any = None) -> None:
        if self._row() is not None:
            await self._drive(self.deployment.now())

    # --- what the RPC does ------------------------------------------------------------------

    async def _start(self, run: dict, now: float) -> dict:
        """Persist the run and its ids, then let the alarm take the steps (a repeat: as is)."""
        try:
            spec = RunSpec.model_validate(run)
        except ValueError as exc:
            raise InvalidInput("invalid_run", f"The run is not valid: {exc}") from None

        def step() -> bool:
            if self._row() is not None:
                return False
            self._sql(
                "INSERT INTO run (id, run_id, spec, status, workspace_id, agent_session_id, "
                "created_at, updated_at) VALUES (1, ?, ?, ?, ?, ?, ?, ?)",
                spec.run_id,
                spec.model_dump_json(),
                str(_R.STARTING),
                new_workspace_id(),
                new_agent_session_id(),
                now,
                now,
            )
            for name in STEPS:
                self._sql("INSERT INTO steps (name, status) VALUES (?, 'pending')", str(name))
            return True

        if self._atomically(step):
            event(log, "run.started", run_id=spec.run_id, chat=spec.chat_id)
            await self.ctx.storage.setAlarm(now * 1000)
        return self._report()

    async def _deliver(self, run_id: str, control: dict, now: float) -> dict:
        """Persist `control` (once by its id) and deliver what is pending if the run is active."""
        try:
            parsed = Control.model_validate(control)
        except ValueError as exc:
            raise InvalidInput("invalid_control", f"The control is not valid: {exc}") from None
        row = self._known(run_id)
        if row["status"] in (_R.STOPPED, _R.FAILED):
            raise RunEnded(run_id, row["status"])

        def step() -> None:
            self._sql(
                "INSERT OR IGNORE INTO controls (id, body, accepted_at) VALUES (?, ?, ?)",
                parsed.id,
                parsed.model_dump_json(),
                now,
            )
            if parsed.kind == "stop":
                self._sql("UPDATE run SET stop_requested = 1, updated_at = ?", now)

        self._atomically(step)
        if parsed.kind == "stop" or row["status"] == _R.ACTIVE:
            await self._drive(now)
        return self._report()

    # --- the machine ------------------------------------------------------------------------

    async def _drive(self, now: float) -> None:
        """Whatever the run needs next: stop, the next steps, or pending deliveries."""
        row = self._row()
        assert row is not None
        if row["status"] in (_R.STOPPED, _R.FAILED):
            return
        if row["stop_requested"]:
            await self._stop(now)
        elif row["status"] == _R.STARTING:
            await self._advance(now)
        if self._status() == _R.ACTIVE:
            await self._deliver_pending(now)

    async def _advance(self, now: float) -> None:
        """Take the steps in order until one waits, retries or fails, or all are done."""
        spec = self._spec()
        row = self._row()
        assert row is not None
        for name in STEPS:
            report = self._step(name)
            if report["status"] == "succeeded":
                continue
            if report["started_at"] is None:
                self._atomically(lambda n=name: self._step_started(n, now))
                await self._progress(spec, name, "started", STEP_TITLES[name] + ".")
                report = self._step(name)
            if now - report["started_at"] > STEP_TIMEOUT_SECONDS[name]:
                minutes = STEP_TIMEOUT_SECONDS[name] / 60
                last = f" The last attempt said: {report['detail']}" if report["detail"] else ""
                await self._fail(
                    spec, name, f"{STEP_TITLES[name]} took over {minutes:g} minutes.{last}", now
                )
                return
            try:
                outcome = await steps.run_step(
                    self.deployment, name, spec, row["workspace_id"], row["agent_session_id"]
                )
            except SamError as exc:
                if not steps.is_transient(exc):
                    await self._fail(spec, name, exc.message, now)
                    return
                await self._retry(spec, name, exc.message, now)
                return
            if outcome.kind == "failed":
                await self._fail(spec, name, outcome.detail, now)
                return
            if outcome.kind == "wait":
                self._atomically(lambda n=name, d=outcome.detail: self._note(n, d, now))
                await self.ctx.storage.setAlarm((now + outcome.seconds) * 1000)
                return
            self._atomically(lambda n=name, d=outcome.detail: self._step_done(n, d, now))
            await self._progress(spec, name, "succeeded", outcome.detail)
            event(log, "run.step", run_id=spec.run_id, step=name)
        self._atomically(lambda: self._move(_R.ACTIVE, now))
        event(log, "run.active", run_id=spec.run_id)

    async def _retry(self, spec: RunSpec, name: Step, detail: str, now: float) -> None:
        def step() -> int:
            self._sql(
                "UPDATE steps SET attempts = attempts + 1, detail = ? WHERE name = ?",
                detail,
                str(name),
            )
            return int(self._step(name)["attempts"])

        attempts = self._atomically(step)
        event(
            log, "run.retry", level=logging.WARNING, run_id=spec.run_id, step=name, attempt=attempts
        )
        await self.ctx.storage.setAlarm((now + retry_delay_seconds(attempts)) * 1000)

    async def _fail(self, spec: RunSpec, name: Step, reason: str, now: float) -> None:
        def step() -> None:
            self._sql("UPDATE steps SET status = 'failed', detail = ? WHERE name = ?", reason, name)
            self._move(_R.FAILED, now, error=reason)

        self._atomically(step)
        event(log, "run.failed", level=logging.WARNING, run_id=spec.run_id, step=name)
        await self._progress(spec, name, "failed", reason)
        await self._chat_status(spec, ChatStatus.FAILED)

    async def _stop(self, now: float) -> None:
        """Stop the agent session (if one was started), then the run; the chat is stopped."""
        spec, row = self._spec(), self._row()
        assert row is not None
        if self._step(Step.AGENT_SESSION)["started_at"] is not None:
            try:
                await steps.deliver(
                    self.deployment,
                    row["workspace_id"],
                    row["agent_session_id"],
                    Control(id="stop", kind="stop"),
                )
            except SamError as exc:
                if not steps.is_transient(exc):
                    raise
                await self.ctx.storage.setAlarm((now + retry_delay_seconds(1)) * 1000)
                return
        self._atomically(lambda: self._move(_R.STOPPED, now, error="Stopped."))
        self._atomically(
            lambda: self._sql("UPDATE controls SET outcome = 'stopped' WHERE outcome IS NULL")
        )
        await self.ctx.storage.deleteAlarm()
        await self._progress(spec, "stop", "succeeded", "The chat was stopped.")
        await self._chat_status(spec, ChatStatus.STOPPED)
        event(log, "run.stopped", run_id=spec.run_id)

    async def _deliver_pending(self, now: float) -> None:
        """The controls not yet taken, in order; stops at the first the agent cannot take."""
        row = self._row()
        assert row is not None
        pending = self._sql(
            "SELECT seq, body, attempts FROM controls WHERE outcome IS NULL ORDER BY seq"
        )
        for seq, body, attempts in pending:
            control = Control.model_validate_json(body)
            try:
                delivery = await steps.deliver(
                    self.deployment, row["workspace_id"], row["agent_session_id"], control
                )
            except SamError as exc:
                if not steps.is_transient(exc):
                    raise
                self._atomically(
                    lambda s=seq: self._sql(
                        "UPDATE controls SET attempts = attempts + 1 WHERE seq = ?", s
                    )
                )
                event(log, "run.delivery_retry", run_id=row["run_id"], control=control.id)
                await self.ctx.storage.setAlarm((now + retry_delay_seconds(attempts + 1)) * 1000)
                return
            outcome = delivery.outcome if delivery.outcome != "refused" else delivery.message
            self._atomically(
                lambda s=seq, o=outcome: self._sql(
                    "UPDATE controls SET outcome = ? WHERE seq = ?", o, s
                )
            )
            if delivery.outcome == "gone":
                # The session (or its workspace) ended: a follow-up starts a fresh run.
                await self._ended(delivery.message, now)
                return

    async def _ended(self, reason: str, now: float) -> None:
        spec = self._spec()
        self._atomically(lambda: self._move(_R.STOPPED, now, error=reason))
        await self._progress(spec, "session", "stopped", reason)
        await self._chat_status(spec, ChatStatus.STOPPED)

    async def _progress(self, spec: RunSpec, step: str, status: str, detail: str) -> None:
        await progress.post(self.deployment, spec, step, status, detail)

    async def _chat_status(self, spec: RunSpec, status: ChatStatus) -> None:
        await chat_data.set_status(self.deployment, spec.project_id, spec.chat_id, str(status))

    # --- state -----------------------------------------------------------------------------

    def _row(self) -> dict[str, Any] | None:
        rows = self._records("SELECT * FROM run")
        return rows[0] if rows else None

    def _known(self, run_id: str) -> dict[str, Any]:
        row = self._row()
        if row is None or row["run_id"] != run_id:
            raise RunNotFound(run_id)
        return row

    def _status(self) -> str:
        row = self._row()
        assert row is not None
        return row["status"]

    def _spec(self) -> RunSpec:
        row = self._row()
        assert row is not None
        return RunSpec.model_validate_json(row["spec"])

    def _step(self, name: str) -> dict[str, Any]:
        return self._records("SELECT * FROM steps WHERE name = ?", str(name))[0]

    def _step_started(self, name: Step, now: float) -> None:
        self._sql(
            "UPDATE steps SET status = 'running', started_at = ? WHERE name = ?", now, str(name)
        )

    def _step_done(self, name: Step, detail: str, now: float) -> None:
        self._sql(
            "UPDATE steps SET status = 'succeeded', detail = ? WHERE name = ?", detail, str(name)
        )
        self._sql("UPDATE run SET updated_at = ?", now)

    def _note(self, name: Step, detail: str, now: float) -> None:
        self._sql("UPDATE steps SET detail = ? WHERE name = ?", detail, str(name))
        self._sql("UPDATE run SET updated_at = ?", now)

    def _move(self, new: RunStatus, now: float, error: str | None = None) -> None:
        current = self._status()
        if current == new:
            return
        transition(Kind.RUN, current, new)
        self._sql("UPDATE run SET status = ?, error = ?, updated_at = ?", str(new), error, now)

    def _report(self) -> dict:
        row = self._row()
        assert row is not None
        spec = RunSpec.model_validate_json(row["spec"])
        reports = [
            StepReport(
                name=Step(step["name"]),
                status=step["status"],
                attempts=int(step["attempts"]),
                detail=step["detail"],
            )
            for step in (self._step(name) for name in STEPS)
        ]
        current = next((r.name for r in reports if r.status in ("pending", "running")), None)
        pending = self._sql("SELECT count(*) FROM controls WHERE outcome IS NULL")[0][0]
        run = Run(
            run_id=row["run_id"],
            mode=spec.mode,
            project_id=spec.project_id,
            chat_id=spec.chat_id,
            status=row["status"],
            step=current if row["status"] == _R.STARTING else None,
            steps=reports,
            workspace_id=row["workspace_id"],
            agent_session_id=row["agent_session_id"],
            error=row["error"],
            pending_controls=int(pending),
            created_at=row["created_at"],
            updated_at=row["updated_at"],
        )
        return run.model_dump(mode="json")

    # --- storage plumbing -------------------------------------------------------------------

    def _records(self, query: str, *bindings: Any) -> list[dict[str, Any]]:
        cursor = self.ctx.storage.sql.exec(query, *bindings)
        names = list(cursor.columnNames)
        return [dict(zip(names, list(row), strict=True)) for row in cursor.raw()]

    def _sql(self, query: str, *bindings: Any) -> list[list[Any]]:
        return [list(row) for row in self.ctx.storage.sql.exec(query, *bindings).raw()]

    def _atomically(self, step: Callable[[], T]) -> T:
        box: list[T] = []
        self.ctx.storage.transactionSync(lambda: box.append(step()))
        return box[0]


async def _answering(work: Awaitable[dict]) -> dict:
    """A refusal as `{"error", "message"}`: an exception would cross RPC as bare text."""
    try:
        return await work
    except SamError as exc:
        return {"error": exc.code, "message": exc.message}
