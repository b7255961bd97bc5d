"""The hetzner provider against a loopback Hetzner Cloud API and Cloudflare DNS API.

Server types come from the API (never a list of our own), a refusing location gives way
to the next, 429/5xx are retried (with Retry-After honoured) and persistent failures end
in a clear error; create adopts a server made by an earlier attempt, delete is
idempotent, and listing goes by SAM's labels. Retry waits go through an injected sleep.
"""

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from tests.fakes.cloudflare_dns import FakeCloudflareDns
from tests.fakes.hetzner import SERVER_TYPES, FakeHetzner, _server_type
from tests.worker.provider_support import Sleeps, Wanted, provider_deployment, user_with_hetzner
from worker.auth.crypto import to_blob
from worker.deployment import Deployment
from worker.errors import SamError
from worker.http_errors import status_for
from worker.http_retry import RetryPolicy
from worker.nodes import bootstrap, cloudflare_api
from worker.nodes.model import NodeStatus, Provider
from worker.nodes.providers import provider_for
from worker.nodes.providers.base import NodeBoot, NodeRef
from worker.nodes.providers.hetzner.api import HETZNER_RETRY
from worker.nodes.providers.hetzner.provider import HetznerProvider
from worker.nodes.service import create_node, list_nodes

SERVERS = "/v1/servers"
CONTROL_PLANE = "http://api.localhost:8787"


@pytest.fixture
async def deployment(
    tmp_path: Path, hetzner: FakeHetzner, cloudflare: FakeCloudflareDns
) -> AsyncIterator[Deployment]:
    hetzner.unavailable.clear()
    hetzner.server_types[:] = [dict(t) for t in SERVER_TYPES]
    async with provider_deployment(tmp_path / ".sam", hetzner, cloudflare) as built:
        yield built


@pytest.fixture
def sleeps() -> Sleeps:
    return Sleeps()


@pytest.fixture
def provider(sleeps: Sleeps) -> HetznerProvider:
    return HetznerProvider(sleep=sleeps)


async def boot_for(deployment: Deployment, node_id: str) -> NodeBoot:
    return NodeBoot(node_id, CONTROL_PLANE, await bootstrap.issue(deployment, node_id))


def posts(hetzner: FakeHetzner, token: str) -> list[Any]:
    return [c for c in hetzner.calls(SERVERS, "POST") if c.token == token]


async def test_the_cheapest_fitting_type_is_read_from_the_api(
    deployment: Deployment,
    hetzner: FakeHetzner,
    cloudflare: FakeCloudflareDns,
    provider: HetznerProvider,
) -> None:
    user, token = await user_with_hetzner(deployment, hetzner)
    boot = await boot_for(deployment, "n1")
    made = await provider.create_server(deployment, Wanted("n1", "small"), user, boot)

    # cax11 (ARM) and cx21 (deprecated) are cheaper, ccx13 is dedicated: cx22 it is.
    assert made.server_type == "cx22"
    assert made.location == "fsn1" and made.ip == "127.0.0.1"
    assert made.agent_host == "vm-n1.localhost" and made.agent_port == 443
    [server] = hetzner.servers(token)
    assert str(server.id) == made.provider_server_id
    assert server.name == "sam-n1" and server.image == "debian-12"
    assert server.labels == {"managed-by": "sam", "sam-node": "n1", "sam-user": user}
    assert server.user_data is not None and server.user_data.startswith("#cloud-config\n")
    assert boot.bootstrap_token in server.user_data
    [record] = cloudflare.records_named("vm-n1.localhost")
    assert record["id"] == made.dns_record_id and record["content"] == "127.0.0.1"
    assert record["proxied"] is True
    assert hetzner.calls("/v1/server_types") and hetzner.calls("/v1/locations")


@pytest.mark.parametrize(("size", "expected"), [("medium", "cx32"), ("large", "cx42")])
async def test_each_size_gets_the_cheapest_type_that_fits(
    deployment: Deployment,
    hetzner: FakeHetzner,
    provider: HetznerProvider,
    size: str,
    expected: str,
) -> None:
    user, _ = await user_with_hetzner(deployment, hetzner)
    made = await provider.create_server(
        deployment, Wanted("n2", size), user, await boot_for(deployment, "n2")
    )
    assert made.server_type == expected


async def test_a_new_type_in_the_api_is_used_without_a_code_change(
    deployment: Deployment, hetzner: FakeHetzner, provider: HetznerProvider
) -> None:
    hetzner.server_types.append(_server_type(200, "cx23", 2, 4.0, 40, "0.0040", "2.9900"))
    user, _ = await user_with_hetzner(deployment, hetzner)
    made = await provider.create_server(
        deployment, Wanted("n3"), user, await boot_for(deployment, "n3")
    )
    assert made.server_type == "cx23"


async def test_an_unknown_size_or_none_that_fits_is_a_400(
    deployment: Deployment, hetzner: FakeHetzner, provider: HetznerProvider
) -> None:
    user, token = await user_with_hetzner(deployment, hetzner)
    with pytest.raises(SamError) as unknown:
        await provider.create_server(
            deployment, Wanted("n4", "huge"), user, await boot_for(deployment, "n4")
        )
    assert (status_for(unknown.value), unknown.value.code) == (400, "unknown_size")
    hetzner.server_types[:] = [t for t in hetzner.server_types if t["cores"] < 8]
    with pytest.raises(SamError) as none:
        await provider.create_server(
            deployment, Wanted("n4", "large"), user, await boot_for(deployment, "n4")
        )
    assert (status_for(none.value), none.value.code) == (400, "no_server_type")
    assert hetzner.servers(token) == []


async def test_the_nodes_own_location_is_tried_first(
    deployment: Deployment, hetzner: FakeHetzner, provider: HetznerProvider
) -> None:
    user, _ = await user_with_hetzner(deployment, hetzner)
    made = await provider.create_server(
        deployment, Wanted("n5", None, "hel1"), user, await boot_for(deployment, "n5")
    )
    assert made.location == "hel1"


async def test_a_location_without_capacity_gives_way_to_the_next(
    deployment: Deployment, hetzner: FakeHetzner, provider: HetznerProvider
) -> None:
    user, token = await user_with_hetzner(deployment, hetzner)
    hetzner.fail_next("POST", SERVERS, 422, "placement_error", "error during placement")
    hetzner.make_unavailable("nbg1")
    made = await provider.create_server(
        deployment, Wanted("n6"), user, await boot_for(deployment, "n6")
    )
    # fsn1: placement_error; nbg1: 412 resource_unavailable; hel1 places it.
    assert made.location == "hel1"
    tried = [call.body["location"] for call in posts(hetzner, token)]
    assert tried == ["fsn1", "nbg1", "hel1"]
    assert len(hetzner.servers(token)) == 1


async def test_no_location_with_capacity_is_a_503_naming_them_and_nothing_is_left(
    deployment: Deployment,
    hetzner: FakeHetzner,
    cloudflare: FakeCloudflareDns,
    provider: HetznerProvider,
) -> None:
    user, token = await user_with_hetzner(deployment, hetzner)
    hetzner.make_unavailable("fsn1", "nbg1", "hel1")
    with pytest.raises(SamError) as refused:
        await provider.create_server(
            deployment, Wanted("n7"), user, await boot_for(deployment, "n7")
        )
    assert (status_for(refused.value), refused.value.code) == (503, "hetzner_no_capacity")
    assert all(name in refused.value.message for name in ("fsn1", "nbg1", "hel1"))
    assert hetzner.servers(token) == [] and cloudflare.records_named("vm-n7.localhost") == []


async def test_429_and_5xx_are_retried_with_backoff_then_succeed(
    deployment: Deployment, hetzner: FakeHetzner, provider: HetznerProvider, sleeps: Sleeps
) -> None:
    user, token = await user_with_hetzner(deployment, hetzner)
    hetzner.fail_next("GET", "/v1/server_types", 503, "unavailable", "service unavailable")
    hetzner.fail_next("POST", SERVERS, 429, "rate_limit_exceeded", "limit", retry_after=7)
    hetzner.fail_next("POST", SERVERS, 502, "server_error", "bad gateway")
    made = await provider.create_server(
        deployment, Wanted("n8"), user, await boot_for(deployment, "n8")
    )
    assert made.location == "fsn1", "a retried failure is not a reason to change location"
    assert len(hetzner.servers(token)) == 1
    assert len(sleeps.delays) == 3
    assert sleeps.delays[1] >= 7, "Retry-After is honoured"
    assert sleeps.delays[0] <= HETZNER_RETRY.max_delay_seconds


async def test_a_persistent_5xx_is_a_clear_502_after_every_attempt(
    deployment: Deployment, hetzner: FakeHetzner, provider: HetznerProvider, sleeps: Sleeps
) -> None:
    user, token = await user_with_hetzner(deployment, hetzner)
    attempts = HETZNER_RETRY.attempts
    hetzner.fail_next("POST", SERVERS, 503, "unavailable", "service unavailable", times=attempts)
    with pytest.raises(SamError) as failed:
        await provider.create_server(
            deployment, Wanted("n9"), user, await boot_for(deployment, "n9")
        )
    assert (status_for(failed.value), failed.value.code) == (502, "hetzner_unavailable")
    assert "Try again later" in failed.value.message
    assert len(posts(hetzner, token)) == HETZNER_RETRY.attempts
    assert len(sleeps.delays) == HETZNER_RETRY.attempts - 1
    assert hetzner.servers(token) == []


async def test_a_retry_after_beyond_what_a_request_can_wait_is_not_waited_for(
    deployment: Deployment, hetzner: FakeHetzner, provider: HetznerProvider, sleeps: Sleeps
) -> None:
    user, _ = await user_with_hetzner(deployment, hetzner)
    hetzner.fail_next("GET", "/v1/server_types", 429, "rate_limit_exceeded", "x", retry_after=3600)
    with pytest.raises(SamError) as limited:
        await provider.create_server(
            deployment, Wanted("n10"), user, await boot_for(deployment, "n10")
        )
    assert (status_for(limited.value), limited.value.code) == (503, "hetzner_rate_limited")
    assert sleeps.delays == []


async def test_creating_again_for_the_same_node_adopts_the_server_already_made(
    deployment: Deployment, hetzner: FakeHetzner, provider: HetznerProvider
) -> None:
    user, token = await user_with_hetzner(deployment, hetzner)
    first = await provider.create_server(
        deployment, Wanted("n11"), user, await boot_for(deployment, "n11")
    )
    again = await provider.create_server(
        deployment, Wanted("n11"), user, await boot_for(deployment, "n11")
    )
    assert again.provider_server_id == first.provider_server_id
    assert len(hetzner.servers(token)) == 1 and len(posts(hetzner, token)) == 1


async def test_delete_is_idempotent_and_takes_the_dns_record(
    deployment: Deployment,
    hetzner: FakeHetzner,
    cloudflare: FakeCloudflareDns,
    provider: HetznerProvider,
) -> None:
    user, token = await user_with_hetzner(deployment, hetzner)
    made = await provider.create_server(
        deployment, Wanted("n12"), user, await boot_for(deployment, "n12")
    )
    ref = NodeRef("n12", user, made.provider_server_id, made.dns_record_id)
    await provider.delete_server(deployment, ref)
    assert hetzner.servers(token) == [] and cloudflare.records_named("vm-n12.localhost") == []
    await provider.delete_server(deployment, ref)  # 404 from Hetzner, record gone: fine
    deletes = [c for c in hetzner.calls(f"{SERVERS}/{made.provider_server_id}", "DELETE")]
    assert [c.status for c in deletes] == [200, 404]


async def test_a_certificate_cloudflare_will_not_revoke_does_not_keep_the_node(
    deployment: Deployment,
    hetzner: FakeHetzner,
    cloudflare: FakeCloudflareDns,
    provider: HetznerProvider,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A token without Zone → SSL and Certificates → Edit: the VM and record still go, and
    the log says what was left behind."""
    user, token = await user_with_hetzner(deployment, hetzner)
    made = await provider.create_server(
        deployment, Wanted("n19"), user, await boot_for(deployment, "n19")
    )
    cloudflare.certificates_forbidden = True
    try:
        await provider.delete_server(deployment, NodeRef("n19", user, made.provider_server_id))
    finally:
        cloudflare.certificates_forbidden = False
    assert hetzner.servers(token) == [] and cloudflare.records_named("vm-n19.localhost") == []
    assert "origin_ca.revoke_failed" in caplog.text and "SSL and Certificates" in caplog.text


async def test_delete_finds_a_server_whose_id_was_never_stored(
    deployment: Deployment, hetzner: FakeHetzner, provider: HetznerProvider
) -> None:
    user, token = await user_with_hetzner(deployment, hetzner)
    await provider.create_server(deployment, Wanted("n13"), user, await boot_for(deployment, "n13"))
    await provider.delete_server(deployment, NodeRef("n13", user))  # a crash before D1 had the id
    assert hetzner.servers(token) == []


async def test_listing_goes_by_our_labels_and_the_user(
    deployment: Deployment, hetzner: FakeHetzner, provider: HetznerProvider
) -> None:
    alice, token = await user_with_hetzner(deployment, hetzner, "alice")
    for node_id in ("n14", "n15", "n16"):
        await provider.create_server(
            deployment, Wanted(node_id), alice, await boot_for(deployment, node_id)
        )
    # In the same project: a server SAM never made, and one of another SAM user's.
    n14, _, n16 = hetzner.servers(token)
    n14.labels.pop("managed-by")
    n16.labels["sam-user"] = "u_bob"
    listed = await provider.list_managed(deployment, alice)
    assert sorted(s.node_id for s in listed) == ["n15"]
    assert {s.provider for s in listed} == {"hetzner"} and listed[0].user_id == alice
    assert [c.query["label_selector"] for c in hetzner.calls(SERVERS, "GET")][-1] == (
        f"managed-by=sam,sam-user={alice}"
    )


async def test_no_token_stored_or_a_rejected_one_tells_the_user_what_to_do(
    deployment: Deployment, hetzner: FakeHetzner, provider: HetznerProvider
) -> None:
    from tests.worker.node_support import add_user

    nobody = await add_user(deployment.env, "nobody")
    with pytest.raises(SamError) as missing:
        await provider.create_server(
            deployment, Wanted("n17"), nobody, await boot_for(deployment, "n17")
        )
    assert (status_for(missing.value), missing.value.code) == (400, "credential_missing")
    assert "Settings" in missing.value.message

    user, token = await user_with_hetzner(deployment, hetzner)
    del hetzner.projects[token]  # revoked in the Hetzner Console
    with pytest.raises(SamError) as rejected:
        await provider.create_server(
            deployment, Wanted("n17"), user, await boot_for(deployment, "n17")
        )
    assert (status_for(rejected.value), rejected.value.code) == (400, "hetzner_token_rejected")
    assert token not in rejected.value.message


async def test_a_dns_failure_takes_the_new_vm_back(
    deployment: Deployment,
    hetzner: FakeHetzner,
    cloudflare: FakeCloudflareDns,
    provider: HetznerProvider,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(
        cloudflare_api, "CLOUDFLARE_RETRY", RetryPolicy(attempts=2, base_delay_seconds=0.01)
    )
    user, token = await user_with_hetzner(deployment, hetzner)
    cloudflare.fail_next("POST", 500, 10001, "internal error", times=2)
    with pytest.raises(SamError) as failed:
        await provider.create_server(
            deployment, Wanted("n18"), user, await boot_for(deployment, "n18")
        )
    assert failed.value.code == "dns_error"
    assert hetzner.servers(token) == [], "a VM nobody can reach must not be left running"


async def test_without_dns_settings_no_vm_is_made(
    tmp_path: Path, hetzner: FakeHetzner, provider: HetznerProvider
) -> None:
    async with provider_deployment(tmp_path / "nodns", hetzner, None) as deployment:
        user, token = await user_with_hetzner(deployment, hetzner)
        with pytest.raises(SamError) as refused:
            provider_for("hetzner").check_available(deployment)
        assert refused.value.code == "cloudflare_not_configured"
        with pytest.raises(SamError):
            await provider.create_server(
                deployment, Wanted("n19"), user, await boot_for(deployment, "n19")
            )
    assert hetzner.servers(token) == [] and not [c for c in hetzner.requests if c.token == token]


async def test_an_unreadable_credential_is_a_400_naming_it_and_no_node_is_left_creating(
    deployment: Deployment, hetzner: FakeHetzner
) -> None:
    user, token = await user_with_hetzner(deployment, hetzner)
    # Sealed under another SAM_ENCRYPTION_KEY, or changed at rest: it no longer authenticates.
    await (
        deployment.env.DATABASE.prepare(
            "UPDATE credentials SET ciphertext = ?, label = 'main' WHERE user_id = ?"
        )
        .bind(to_blob(b"not what was sealed" * 2), user)
        .run()
    )
    with pytest.raises(SamError) as unreadable:
        await create_node(deployment, user, Provider.HETZNER)
    assert (status_for(unreadable.value), unreadable.value.code) == (400, "credential_unreadable")
    assert "hetzner credential 'main'" in unreadable.value.message
    assert "enter it again" in unreadable.value.message
    (node,) = await list_nodes(deployment, user)
    assert node.status == NodeStatus.ERROR
    assert posts(hetzner, token) == []
