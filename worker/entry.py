"""The Worker's entry module: the entrypoint Cloudflare and the local edge both drive.

Durable Object classes are re-exported here, as wrangler.toml names them by class.
"""

from typing import Any

from durable_objects.node_lifecycle import NodeLifecycle
from durable_objects.project_data import ProjectData
from durable_objects.task_runner import TaskRunner
from worker.deployment import Deployment
from worker.edge import cron
from worker.edge import router as edge
from worker.platform import Request, Response, WorkerEntrypoint

__all__ = ["Default", "NodeLifecycle", "ProjectData", "TaskRunner"]


class Default(WorkerEntrypoint):
    async def fetch(self, request: Request) -> Response:
        return await edge.handle(request, self.env, self.ctx)

    async def scheduled(self, controller: Any, env: Any, ctx: Any) -> None:
        # self.env, not `env`: on Cloudflare the handler's `env` holds the raw JS bindings.
        await cron.run(controller, Deployment.of(self.env))
