"""Loopback third parties shared by the worker tests: one of each per test module."""

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from tests.fakes.cloudflare_dns import FakeCloudflareDns
from tests.fakes.hetzner import FakeHetzner
from tests.worker.node_support import cloud_runtime
from twin import env as local_env


@pytest.fixture(scope="module")
def hetzner() -> Iterator[FakeHetzner]:
    with FakeHetzner() as fake:
        yield fake


@pytest.fixture(scope="module")
def cloudflare() -> Iterator[FakeCloudflareDns]:
    with FakeCloudflareDns() as fake:
        yield fake


@pytest.fixture
async def cloud(
    tmp_path: Path, hetzner: FakeHetzner, cloudflare: FakeCloudflareDns
) -> AsyncIterator[local_env.Runtime]:
    """An in-process runtime whose Hetzner and Cloudflare DNS are the loopback fakes."""
    async with cloud_runtime(tmp_path / ".sam", hetzner, cloudflare) as runtime:
        yield runtime
