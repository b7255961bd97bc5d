"""A Durable Object runtime on a temporary directory, as `twin.env` builds one."""

from pathlib import Path
from types import SimpleNamespace
from typing import Any

from twin.alarms import AlarmScheduler
from twin.clock import ManualClock
from twin.durable_objects import DurableObjectNamespace


class Twin:
    """Namespaces sharing one env and one alarm scheduler; `restart()` is a new process."""

    def __init__(self, data_dir: Path, clock: ManualClock) -> None:
        self.data_dir = data_dir
        self.clock = clock
        self.env = SimpleNamespace()
        self.alarms = AlarmScheduler(data_dir / "do", clock)
        self._namespaces: list[DurableObjectNamespace] = []

    def bind(self, name: str, cls: type) -> DurableObjectNamespace:
        namespace = DurableObjectNamespace(
            cls, self.data_dir / "do" / cls.__name__, lambda: self.env, self.alarms
        )
        setattr(self.env, name, namespace)
        self._namespaces.append(namespace)
        return namespace

    async def __aenter__(self) -> "Twin":
        self.alarms.start()
        return self

    async def __aexit__(self, *exc: Any) -> None:
        await self.alarms.stop()
        for namespace in self._namespaces:
            namespace.close()

    async def restart(self) -> "Twin":
        """Close everything; return a new, unstarted Twin on the same directory."""
        await self.__aexit__(None, None, None)
        return Twin(self.data_dir, self.clock)

    async def advance(self, seconds: float) -> None:
        """Move time on and let every alarm that fell due run."""
        self.clock.advance(seconds)
        await self.alarms.settle()
