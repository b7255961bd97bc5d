"""A run's progress in its chat: `run` messages the chat shows inline.

await post(deployment, spec, step, status, detail)
    frame {"type": "run", "run_id", "step", "status", "detail"}, message id
    run:{run_id}:{step}:{status}: a step that runs again after a crash shows once
"""

from worker.chats.run import RunSpec
from worker.deployment import Deployment
from worker.projects import chat_data


async def post(deployment: Deployment, spec: RunSpec, step: str, status: str, detail: str) -> None:
    frame = {"type": "run", "run_id": spec.run_id, "step": step, "status": status, "detail": detail}
    message_id = f"run:{spec.run_id}:{step}:{status}"
    await chat_data.add_message(deployment, spec.project_id, spec.chat_id, message_id, frame)
