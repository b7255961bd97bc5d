"""worker/nodes/dns.py against a loopback Cloudflare DNS API: proxied A records for cloud nodes,
created and deleted idempotently, with Cloudflare's faults."""

from collections.abc import AsyncIterator, Iterator
from dataclasses import replace
from pathlib import Path

import pytest

from tests.fakes.cloudflare_dns import FakeCloudflareDns
from tests.worker.provider_support import provider_deployment
from worker.config import Config
from worker.errors import SamError
from worker.http_errors import status_for
from worker.http_retry import RetryPolicy
from worker.nodes import cloudflare_api, dns
from worker.nodes.cloudflare_api import CloudflareNotConfigured

NAME = "vm-n0123456789abcdef.localhost"


@pytest.fixture(scope="module")
def fake() -> Iterator[FakeCloudflareDns]:
    with FakeCloudflareDns() as running:
        yield running


@pytest.fixture
async def config(tmp_path: Path, fake: FakeCloudflareDns) -> AsyncIterator[Config]:
    fake.records.clear()
    async with provider_deployment(tmp_path / ".sam", None, fake) as built:
        yield built.config


def test_the_record_name_is_vm_id_under_the_domain_host_without_its_port() -> None:
    config = Config("localhost:8787", "development", 1024)
    assert dns.vm_hostname(config, "n1") == "vm-n1.localhost"
    assert dns.vm_hostname(Config("sam.example.com", "production", 1), "n1") == (
        "vm-n1.sam.example.com"
    )


async def test_a_proxied_a_record_is_created_once(config: Config, fake: FakeCloudflareDns) -> None:
    record = await dns.ensure_a_record(config, NAME, "203.0.113.7")
    again = await dns.ensure_a_record(config, NAME, "203.0.113.7")
    assert again.id == record.id
    [stored] = fake.records_named(NAME)
    assert stored["type"] == "A" and stored["content"] == "203.0.113.7"
    assert stored["proxied"] is True, "the edge reaches the agent through Cloudflare's proxy"
    assert stored["ttl"] == dns.AUTOMATIC_TTL
    posts = [r for r in fake.requests if r.method == "POST"]
    assert len(posts) == 1


async def test_a_record_left_with_another_ip_is_pointed_at_the_new_one(
    config: Config, fake: FakeCloudflareDns
) -> None:
    old = await dns.ensure_a_record(config, NAME, "203.0.113.7")
    new = await dns.ensure_a_record(config, NAME, "198.51.100.9")
    assert new.id == old.id and new.content == "198.51.100.9"
    assert [r["content"] for r in fake.records_named(NAME)] == ["198.51.100.9"]


async def test_a_dns_only_record_from_before_is_put_behind_the_proxy(
    config: Config, fake: FakeCloudflareDns
) -> None:
    """The plain-HTTP design made DNS-only records: one left over must not keep the node's
    address in public DNS, nor route around Cloudflare."""
    await dns.ensure_a_record(config, NAME, "203.0.113.7")
    [record] = fake.records_named(NAME)
    fake.records[record["id"]]["proxied"] = False
    again = await dns.ensure_a_record(config, NAME, "203.0.113.7")
    assert again.id == record["id"] and again.proxied
    assert fake.records_named(NAME)[0]["proxied"] is True


async def test_delete_removes_it_and_an_already_gone_record_is_fine(
    config: Config, fake: FakeCloudflareDns
) -> None:
    record = await dns.ensure_a_record(config, NAME, "203.0.113.7")
    other = await dns.ensure_a_record(config, "vm-other.localhost", "203.0.113.8")
    assert await dns.delete_records(config, NAME, record.id) == 1
    assert fake.records_named(NAME) == []
    assert await dns.delete_records(config, NAME, record.id) == 0  # stale id: 81044, tolerated
    assert await dns.delete_records(config, NAME) == 0
    assert [r["id"] for r in fake.records_named("vm-other.localhost")] == [other.id]


async def test_find_matches_the_exact_name_only(config: Config) -> None:
    await dns.ensure_a_record(config, NAME, "203.0.113.7")
    await dns.ensure_a_record(config, "x" + NAME, "203.0.113.8")
    assert [r.content for r in await dns.find_records(config, NAME)] == ["203.0.113.7"]


async def test_a_create_that_races_another_one_uses_the_record_made(
    config: Config, fake: FakeCloudflareDns
) -> None:
    fake.fail_next("POST", 400, 81058, "An identical record already exists.")
    record = await dns.ensure_a_record(config, NAME, "203.0.113.7")
    assert [r["id"] for r in fake.records_named(NAME)] == [record.id]


async def test_cloudflare_failing_for_a_while_is_retried(
    config: Config, fake: FakeCloudflareDns, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The retry waits are real here (the DNS client takes no injected sleep): keep them short.
    monkeypatch.setattr(
        cloudflare_api, "CLOUDFLARE_RETRY", RetryPolicy(attempts=4, base_delay_seconds=0.01)
    )
    fake.fail_next("POST", 503, 10001, "service unavailable", times=2)
    record = await dns.ensure_a_record(config, NAME, "203.0.113.7")
    assert fake.records_named(NAME)[0]["id"] == record.id
    fake.fail_next("POST", 503, 10001, "service unavailable", times=4)
    with pytest.raises(SamError) as failed:
        await dns.ensure_a_record(config, "vm-n2.localhost", "203.0.113.8")
    assert status_for(failed.value) == 502 and failed.value.code == "dns_error"


async def test_a_wrong_token_says_what_the_operator_must_fix(
    tmp_path: Path, fake: FakeCloudflareDns
) -> None:
    fake.records.clear()
    async with provider_deployment(tmp_path / ".sam", None, fake) as deployment:
        config = replace(deployment.config, cloudflare_api_token="not-the-token")
        with pytest.raises(SamError) as refused:
            await dns.ensure_a_record(config, NAME, "203.0.113.7")
    assert refused.value.code == "dns_error"
    assert "SAM_CLOUDFLARE_API_TOKEN" in refused.value.message
    assert "not-the-token" not in refused.value.message
    assert fake.records_named(NAME) == []


async def test_bad_content_is_refused_with_cloudflares_reason(config: Config) -> None:
    with pytest.raises(SamError) as refused:
        await dns.ensure_a_record(config, NAME, "not-an-ip")
    assert "9005" in refused.value.message


async def test_without_settings_nothing_is_called(tmp_path: Path) -> None:
    async with provider_deployment(tmp_path / ".sam", None, None) as deployment:
        with pytest.raises(CloudflareNotConfigured) as refused:
            await dns.ensure_a_record(deployment.config, NAME, "203.0.113.7")
    assert status_for(refused.value) == 503
    assert "SAM_CLOUDFLARE_ZONE_ID" in refused.value.message
