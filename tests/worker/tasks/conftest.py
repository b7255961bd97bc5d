"""The worker tests' loopback Hetzner and Cloudflare DNS, for the tasks' tests, and a runtime
with the loopback GitHub's App configured: a task's project must be on GitHub."""

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from tests.fakes.cloudflare_dns import FakeCloudflareDns
from tests.fakes.github import FakeGitHub
from tests.fakes.hetzner import FakeHetzner
from tests.worker.conftest import cloudflare, hetzner
from tests.worker.node_support import cloud_runtime
from twin import env as local_env

__all__ = ["cloud", "cloudflare", "github", "hetzner"]


@pytest.fixture
def github() -> Iterator[FakeGitHub]:
    with FakeGitHub() as served:
        yield served


@pytest.fixture
async def cloud(
    tmp_path: Path, hetzner: FakeHetzner, cloudflare: FakeCloudflareDns, github: FakeGitHub
) -> AsyncIterator[local_env.Runtime]:
    async with cloud_runtime(tmp_path / ".sam", hetzner, cloudflare, github.app_vars()) as runtime:
        yield runtime
