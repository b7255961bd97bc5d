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

The workspace_ready step does not wait for its poll when the workspace's ready (or failed)
callback comes: the callback `wake`s the runs waiting on the workspace
(worker/chats/workspace_events.py), which sets the alarm to now; the poll is the fallback
for a callback that is lost.

Its storage (tables, transactions) is durable_objects/run_storage.py.

RPC (arguments plain JSON values; `now` is the caller's clock, as NodeLifecycle's):
    start(run: dict, now) -> Run      deliver(run_id, control: dict, now) -> Run
    status(run_id) -> Run | None      cancel(run_id, now) -> Run
    wake(run_id, now) -> Run | None   (its workspace changed: look now)
"""

import logging
from collections.abc import Awaitable
from typing import Any

from durable_objects.run_storage import RunStorage
from wire.chat import ChatStatus
from worker.chats import progress, steps, task_steps
from worker.chats.run import (
    STEP_TIMEOUT_SECONDS,
    STEP_TITLES,
    Control,
    RunSpec,
    Step,
    new_agent_session_id,
    retry_delay_seconds,
    steps_of,
)
from worker.deployment import Deployment
from worker.errors import Conflict, InvalidInput, NotFound, SamError
from worker.logs import event
from worker.platform import DurableObject
from worker.projects import chat_data
from worker.states import RunStatus, TaskStatus
from worker.tasks import store as tasks
from worker.workspaces.model import new_workspace_id

log = logging.getLogger("sam.task_runner")

_R = RunStatus
_ENDED = (_R.STOPPED, _R.FAILED)


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
        self.runs = RunStorage(ctx.storage)  # no state of its own: queries over storage
        # A wake that came while a step ran (its look may predate the change): the step's
        # next look is then at once, not after its poll. Memory suffices: an object evicted
        # mid-step loses that step too, and its alarm runs it again.
        self._woken = False

    # --- RPC -------------------------------------------------------------------------------

    async def start(self, run: dict, now: float) -> dict:
        return await _answering(self._start(run, now))

    async def deliver(self, run_id: str, control: dict, now: float) -> dict:
        return await _answering(self._deliver(run_id, control, now))

    async def cancel(self, run_id: str, now: float) -> dict:
        """Stop the run (its agent session too, if it has one)."""
        return await _answering(self._deliver(run_id, {"id": "cancel", "kind": "stop"}, now))

    async def status(self, run_id: str) -> dict | None:
        row = self.runs.row()
        return None if row is None or row["run_id"] != run_id else self.runs.report()

    async def wake(self, run_id: str, now: float) -> dict | None:
        """The run's workspace became ready or failed: a run waiting for it looks now."""
        row = self.runs.row()
        if row is None or row["run_id"] != run_id:
            return None
        if row["status"] == _R.STARTING:
            self._woken = True
            await self._arm(now)
        return self.runs.report()

    async def alarm(self, info: Any = None) -> None:
        row = self.runs.row()
        if row is not None:
            # The object reads no clock of its own: RPC brings the caller's `now`, and an
            # alarm's `now` is the time it was set for (it fires then, or just after).
            await self._drive(row["alarm_at"] or self.deployment.now())

    # --- what the RPC does ------------------------------------------------------------------

    async def _start(self, run: dict, now: float) -> dict:
        """Persist the run and its ids, then let the alarm take the steps (a repeat: as is)."""
        try:
            spec = RunSpec.model_validate(run)
        except ValueError as exc:
            raise InvalidInput("invalid_run", f"The run is not valid: {exc}") from None
        if self.runs.create(spec, new_workspace_id(), new_agent_session_id(), now):
            event(log, "run.started", run_id=spec.run_id, chat=spec.chat_id)
            await self._arm(now)
        return self.runs.report()

    async def _deliver(self, run_id: str, control: dict, now: float) -> dict:
        """Persist `control` (once by its id) and deliver what is pending if the run is active."""
        try:
            parsed = Control.model_validate(control)
        except ValueError as exc:
            raise InvalidInput("invalid_control", f"The control is not valid: {exc}") from None
        row = self.runs.row()
        if row is None or row["run_id"] != run_id:
            raise RunNotFound(run_id)
        if row["status"] in _ENDED:
            raise RunEnded(run_id, row["status"])
        self.runs.accept(parsed, now)
        if parsed.kind == "stop" or row["status"] == _R.ACTIVE:
            await self._drive(now)
        return self.runs.report()

    # --- the machine ------------------------------------------------------------------------

    async def _drive(self, now: float) -> None:
        """Whatever the run needs next: stop, the next steps, or pending deliveries."""
        row = self.runs.current()
        if row["status"] in _ENDED:
            return
        if row["stop_requested"]:
            await self._stop(now)
        elif row["status"] == _R.STARTING:
            await self._advance(now)
        if self.runs.status() == _R.ACTIVE:
            await self._deliver_pending(now)

    async def _advance(self, now: float) -> None:
        """Take the steps in order until one waits, retries or fails, or all are done."""
        spec = self.runs.spec()
        for name in steps_of(spec.mode):
            if self.runs.step(name)["status"] == "succeeded":
                continue
            if not await self._take(spec, name, now):
                return
        if spec.task is None:
            self.runs.moved(_R.ACTIVE, now)
            event(log, "run.active", run_id=spec.run_id)
            return
        self.runs.stopped("Finished.", now)
        await tasks.moved(
            self.deployment, spec.task.task_id, TaskStatus.COMPLETED, "Finished.", step=None
        )
        event(log, "run.finished", run_id=spec.run_id)

    async def _take(self, spec: RunSpec, name: Step, now: float) -> bool:
        """Run one step; True when it succeeded (its result persisted) and the next may go."""
        report = self.runs.step(name)
        if report["started_at"] is None:
            self.runs.step_started(name, now)
            if spec.task is not None:
                await tasks.noted(self.deployment, spec.task.task_id, step=str(name))
            await self._progress(spec, name, "started", STEP_TITLES[name] + ".")
            report = self.runs.step(name)
        if now - report["started_at"] > STEP_TIMEOUT_SECONDS[name]:
            minutes = STEP_TIMEOUT_SECONDS[name] / 60
            last = f" The last attempt said: {report['detail']}" if report["detail"] else ""
            await self._fail(
                spec, name, f"{STEP_TITLES[name]} took over {minutes:g} minutes.{last}", now
            )
            return False
        row = self.runs.current()
        self._woken = False
        take = task_steps.run_step if name in task_steps.STEPS else steps.run_step
        try:
            outcome = await take(
                self.deployment, name, spec, row["workspace_id"], row["agent_session_id"]
            )
        except SamError as exc:
            if not steps.is_transient(exc):
                await self._fail(spec, name, exc.message, now)
                return False
            attempts = self.runs.step_retried(name, exc.message, now)
            event(log, "run.retry", level=logging.WARNING, run_id=spec.run_id, step=name)
            await self._arm(now + retry_delay_seconds(attempts))
            return False
        if self.runs.status() != _R.STARTING:
            # Stopped while the step ran (an RPC ran meanwhile): a session made just now
            # would run unattended, so it is stopped too.
            if name == Step.AGENT_SESSION and outcome.kind == "done":
                await self._stop_session()
            return False
        if outcome.kind == "failed":
            await self._fail(spec, name, outcome.detail, now)
            return False
        if outcome.kind == "wait":
            self.runs.step_noted(name, outcome.detail, now)
            await self._arm(now if self._woken else now + outcome.seconds)
            return False
        self.runs.step_done(name, outcome.detail, now)
        await self._progress(spec, name, "succeeded", outcome.detail)
        event(log, "run.step", run_id=spec.run_id, step=name)
        return True

    async def _fail(self, spec: RunSpec, name: Step, reason: str, now: float) -> None:
        self.runs.failed(name, reason, now)
        event(log, "run.failed", level=logging.WARNING, run_id=spec.run_id, step=name)
        await self._progress(spec, name, "failed", reason)
        await self._chat_status(spec, ChatStatus.FAILED)
        if spec.task is not None:
            await tasks.moved(
                self.deployment, spec.task.task_id, TaskStatus.FAILED, reason, error=reason
            )
            if self.runs.step(Step.WORKSPACE)["status"] == "succeeded":
                row = self.runs.current()
                await task_steps.cleaned_up(
                    self.deployment, spec, row["workspace_id"], row["agent_session_id"]
                )

    async def _stop(self, now: float) -> None:
        """Stop the agent session (if one was started), then the run; the chat is stopped."""
        spec = self.runs.spec()
        if self.runs.step(Step.AGENT_SESSION)["started_at"] is not None:
            try:
                await self._stop_session()
            except SamError as exc:
                if not steps.is_transient(exc):
                    raise
                await self._arm(now + retry_delay_seconds(1))
                return
        self.runs.stopped("Stopped.", now)
        await self.ctx.storage.deleteAlarm()
        await self._progress(spec, "stop", "succeeded", "The chat was stopped.")
        await self._chat_status(spec, ChatStatus.STOPPED)
        if spec.task is not None:  # its workspace was stopped (a cancel moved it first)
            reason = "Its workspace was stopped."
            await tasks.moved(self.deployment, spec.task.task_id, TaskStatus.CANCELLED, reason)
        event(log, "run.stopped", run_id=spec.run_id)

    async def _stop_session(self) -> None:
        """POST …/stop to the run's session (gone or refused: there is nothing to stop)."""
        row = self.runs.current()
        stop = Control(id="stop", kind="stop")
        await steps.deliver(self.deployment, row["workspace_id"], row["agent_session_id"], stop)

    async def _deliver_pending(self, now: float) -> None:
        """The controls not yet taken, in order; stops at the first the agent cannot take."""
        row = self.runs.current()
        for seq, control, attempts in self.runs.pending_controls():
            try:
                delivery = await steps.deliver(
                    self.deployment, row["workspace_id"], row["agent_session_id"], control
                )
            except SamError as exc:
                if not steps.is_transient(exc):
                    raise
                self.runs.control_attempted(seq)
                event(log, "run.delivery_retry", run_id=row["run_id"], control=control.id)
                await self._arm(now + retry_delay_seconds(attempts + 1))
                return
            refused = delivery.outcome == "refused"
            self.runs.control_done(seq, delivery.message if refused else delivery.outcome)
            if delivery.outcome == "gone":
                # The session (or its workspace) ended: a follow-up starts a fresh run.
                spec = self.runs.spec()
                self.runs.stopped(delivery.message, now)
                await self._progress(spec, "session", "stopped", delivery.message)
                await self._chat_status(spec, ChatStatus.STOPPED)
                return

    async def _progress(self, spec: RunSpec, step: str, status: str, detail: str) -> None:
        await progress.post(self.deployment, spec, step, status, detail)

    async def _chat_status(self, spec: RunSpec, status: ChatStatus) -> None:
        await chat_data.set_status(self.deployment, spec.project_id, spec.chat_id, str(status))

    async def _arm(self, at: float) -> None:
        self.runs.alarm_set(at)
        await self.ctx.storage.setAlarm(at * 1000)


async def _answering(work: Awaitable[dict]) -> dict:
    """A refusal as `{"error", "message"}`: an exception would cross RPC as bare text."""
    try:
        return await work
    except SamError as exc:
        return {"error": exc.code, "message": exc.message}
