"""Shared by the provider tests: an in-process runtime wired to the loopback fakes."""

from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

from tests.fakes.cloudflare_dns import FakeCloudflareDns
from tests.fakes.hetzner import FakeHetzner
from tests.worker.node_support import add_user, build_runtime
from twin import upstream
from twin.clock import ManualClock
from worker.auth.credentials import CredentialKind, save_credential
from worker.deployment import Deployment


@dataclass(frozen=True)
class Wanted:
    """A node as create_server reads it."""

    id: str
    size: str | None = None
    location: str | None = None


class Sleeps:
    """An injected sleep: records each delay, waits for none."""

    def __init__(self) -> None:
        self.delays: list[float] = []

    async def __call__(self, seconds: float) -> None:
        self.delays.append(seconds)


@asynccontextmanager
async def provider_deployment(
    data_dir: Path, hetzner: FakeHetzner | None, dns: FakeCloudflareDns | None
) -> AsyncIterator[Deployment]:
    overrides = {}
    if hetzner is not None:
        overrides["SAM_HETZNER_API_URL"] = hetzner.url
    if dns is not None:
        overrides.update(dns.vars())
    runtime = build_runtime(data_dir, ManualClock(), overrides)
    try:
        yield Deployment.of(runtime.env)
    finally:
        await upstream.close()
        runtime.close()


async def user_with_hetzner(
    deployment: Deployment, hetzner: FakeHetzner, login: str = "alice"
) -> tuple[str, str]:
    """A user whose stored Hetzner token opens a fresh project of the fake: (user, token)."""
    user_id = await add_user(deployment.env, login)
    token = hetzner.add_token()
    await save_credential(deployment, user_id, CredentialKind.HETZNER, "", token)
    return user_id, token


def fakes() -> Iterator[tuple[FakeHetzner, FakeCloudflareDns]]:
    with FakeHetzner() as hetzner, FakeCloudflareDns() as dns:
        yield hetzner, dns
