"""The Durable Objects' tests: an in-process runtime on a manual clock, and the worker tests'
loopback Hetzner and Cloudflare DNS."""

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from tests.worker.conftest import cloud, cloudflare, hetzner
from tests.worker.node_support import build_runtime
from twin import env as local_env
from twin import upstream
from twin.clock import ManualClock
from worker.deployment import Deployment

__all__ = ["clock", "cloud", "cloudflare", "deployment", "env", "hetzner", "runtime"]


@pytest.fixture
async def runtime(tmp_path: Path) -> AsyncIterator[local_env.Runtime]:
    built = build_runtime(tmp_path / ".sam", ManualClock())
    built.alarms.start()
    yield built
    await built.alarms.stop()
    built.close()
    await upstream.close()


@pytest.fixture
def env(runtime: local_env.Runtime) -> Any:
    return runtime.env


@pytest.fixture
def clock(runtime: local_env.Runtime) -> ManualClock:
    return runtime.alarms.clock  # type: ignore[return-value]


@pytest.fixture
def deployment(env: Any, clock: ManualClock) -> Deployment:
    return Deployment.of(env, clock)
