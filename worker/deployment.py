"""What one request, Durable Object instance or cron run works against.

    Deployment(env, config, clock)      env: the bindings (D1, KV, R2, Durable Objects)
    Deployment.of(env[, clock])         config: the vars, parsed once, here
                                        clock: the time (SystemClock unless a test injects one)

Built once where work enters the worker (the edge router per request, a Durable Object in
its constructor, `Default.scheduled` per cron run) and passed along, so no function below
re-reads a var or asks the wall clock itself.
"""

from dataclasses import dataclass
from typing import Any

from worker.clock import Clock, SystemClock
from worker.config import Config


@dataclass(frozen=True)
class Deployment:
    env: Any
    config: Config
    clock: Clock

    @classmethod
    def of(cls, env: Any, clock: Clock | None = None) -> "Deployment":
        """`env`'s settings parsed (ConfigError names a bad var), on `clock` or the system's."""
        return cls(env, Config.from_env(env), clock or SystemClock())

    def now(self) -> float:
        """Seconds since the epoch, by this deployment's clock."""
        return self.clock.now()
