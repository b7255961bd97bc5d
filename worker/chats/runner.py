"""The worker's side of a run's TaskRunner object (`getByName(run id)`): its RPC, with domain
errors. The object answers a refusal as `{"error", "message"}` (an exception would cross
RPC as bare text); it is raised here as the domain error its code names.

    await start(deployment, spec) -> Run dict         await status(deployment, run_id) -> Run | None
    await deliver(deployment, run_id, control) -> Run  await cancel(deployment, run_id) -> Run
    await wake(deployment, run_id) -> Run | None       (its workspace changed: look now)
"""

from typing import Any

from worker.chats.run import Control, RunSpec
from worker.deployment import Deployment
from worker.errors import Conflict, InvalidInput, NotFound
from worker.rpc import refusals_raised

_checked = refusals_raised(
    "TaskRunner",
    {
        "run_not_found": NotFound,
        "run_ended": Conflict,
        "invalid_run": InvalidInput,
        "invalid_control": InvalidInput,
    },
)


def _stub(deployment: Deployment, run_id: str) -> Any:
    return deployment.env.TASK_RUNNER.getByName(run_id)


async def start(deployment: Deployment, spec: RunSpec) -> dict:
    run = spec.model_dump(mode="json")
    return _checked(await _stub(deployment, spec.run_id).start(run, deployment.now()))


async def deliver(deployment: Deployment, run_id: str, control: Control) -> dict:
    body = control.model_dump(mode="json", exclude_none=True)
    return _checked(await _stub(deployment, run_id).deliver(run_id, body, deployment.now()))


async def cancel(deployment: Deployment, run_id: str) -> dict:
    return _checked(await _stub(deployment, run_id).cancel(run_id, deployment.now()))


async def status(deployment: Deployment, run_id: str) -> dict | None:
    return _checked(await _stub(deployment, run_id).status(run_id))


async def wake(deployment: Deployment, run_id: str) -> dict | None:
    return _checked(await _stub(deployment, run_id).wake(run_id, deployment.now()))
