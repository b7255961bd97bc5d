"""Base classes for the worker and its Durable Objects, as `workers` defines them.

The local edge instantiates `WorkerEntrypoint` subclasses per event with an
`ExecutionContext`, and Durable Object classes with their `DurableObjectState`, exactly
as workerd does; user code subclasses these through `worker.platform`.
"""

import asyncio
import logging
from collections.abc import Awaitable
from typing import Any

log = logging.getLogger("sam.local")


class ExecutionContext:
    """`ctx` of a worker event: `waitUntil` keeps work alive after the response."""

    def __init__(self, pending: set[asyncio.Task[Any]]) -> None:
        self._pending = pending

    def waitUntil(self, work: Awaitable[Any]) -> None:
        task = asyncio.ensure_future(work)
        self._pending.add(task)
        task.add_done_callback(self._finished)

    def passThroughOnException(self) -> None:
        """There is no origin behind the local edge; like workerd without one, a no-op."""

    def _finished(self, task: asyncio.Task[Any]) -> None:
        self._pending.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("waitUntil task failed", exc_info=task.exception())


class WorkerEntrypoint:
    def __init__(self, ctx: Any, env: Any) -> None:
        self.ctx = ctx
        self.env = env


class DurableObject:
    def __init__(self, ctx: Any, env: Any) -> None:
        self.ctx = ctx
        self.env = env
