"""worker/nodes/origin_ca.py against the loopback Cloudflare API: a cloud node's CSR becomes
an Origin CA certificate for the node's own name only, over the node's key; bad CSRs and
nodes that are not cloud nodes being made or running are refused before Cloudflare is
asked; certificates are revoked by name, idempotently."""

import secrets
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from tests.fakes.cloudflare_dns import FakeCloudflareDns
from tests.worker.node_support import add_node, add_user
from tests.worker.provider_support import provider_deployment
from worker.deployment import Deployment
from worker.errors import SamError
from worker.http_errors import status_for
from worker.http_retry import RetryPolicy
from worker.nodes import cloudflare_api, dns, origin_ca


@pytest.fixture(scope="module")
def fake() -> Iterator[FakeCloudflareDns]:
    with FakeCloudflareDns() as running:
        yield running


@pytest.fixture
async def deployment(tmp_path: Path, fake: FakeCloudflareDns) -> AsyncIterator[Deployment]:
    fake.certificates.clear()
    fake.requests.clear()
    async with provider_deployment(tmp_path / ".sam", None, fake) as built:
        yield built


def csr_for(*names: str) -> tuple[str, ec.EllipticCurvePrivateKey]:
    """A CSR as a node's openssl makes it, asking for `names` (which must not matter)."""
    key = ec.generate_private_key(ec.SECP256R1())
    request = (
        x509.CertificateSigningRequestBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, names[0])]))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(n) for n in names]), False)
        .sign(key, hashes.SHA256())
    )
    return request.public_bytes(serialization.Encoding.PEM).decode(), key


async def cloud_node(deployment: Deployment, status: str = "creating") -> str:
    user = await add_user(deployment.env, "user" + secrets.token_hex(4))
    return await add_node(deployment.env, user, provider="hetzner", status=status)


async def test_a_cloud_node_gets_a_certificate_for_its_own_name_over_its_own_key(
    deployment: Deployment, fake: FakeCloudflareDns
) -> None:
    node_id = await cloud_node(deployment)
    csr, key = csr_for("app.localhost", "evil.example.com")  # names it must not get
    pem = await origin_ca.certify_node(deployment, node_id, csr)
    certificate = x509.load_pem_x509_certificate(pem.encode())
    names = certificate.extensions.get_extension_for_class(x509.SubjectAlternativeName)
    hostname = dns.vm_hostname(deployment.config, node_id)
    assert names.value.get_values_for_type(x509.DNSName) == [hostname]
    assert certificate.public_key().public_numbers() == key.public_key().public_numbers()
    [asked] = [r for r in fake.requests if r.method == "POST"]
    assert asked.path == "/client/v4/certificates"
    assert asked.body["hostnames"] == [hostname] and asked.body["request_type"] == "origin-ecc"


@pytest.mark.parametrize(
    "csr",
    [
        "",
        "not a csr",
        "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n",
        "-----BEGIN CERTIFICATE REQUEST-----\n$(id)\n-----END CERTIFICATE REQUEST-----\n",
        "-----BEGIN CERTIFICATE REQUEST-----\n"
        + "A" * 5000
        + "\n-----END CERTIFICATE REQUEST-----",
    ],
)
async def test_a_malformed_csr_is_a_400_before_cloudflare_is_asked(
    deployment: Deployment, fake: FakeCloudflareDns, csr: str
) -> None:
    node_id = await cloud_node(deployment)
    with pytest.raises(SamError) as refused:
        await origin_ca.certify_node(deployment, node_id, csr)
    assert (status_for(refused.value), refused.value.code) == (400, "invalid_csr")
    assert fake.requests == []


async def test_a_csr_cloudflare_cannot_read_is_its_refusal(deployment: Deployment) -> None:
    node_id = await cloud_node(deployment)
    garbled = "-----BEGIN CERTIFICATE REQUEST-----\nMIIBbad=\n-----END CERTIFICATE REQUEST-----\n"
    with pytest.raises(SamError) as refused:
        await origin_ca.certify_node(deployment, node_id, garbled)
    assert refused.value.code == "origin_ca_error" and "1010" in refused.value.message


@pytest.mark.parametrize(
    ("provider", "status", "expected"),
    [
        ("local", "creating", (409, "not_a_cloud_node")),
        ("hetzner", "stopped", (409, "node_not_certifiable")),
        ("hetzner", "error", (409, "node_not_certifiable")),
    ],
)
async def test_only_a_cloud_node_being_made_or_running_is_certified(
    deployment: Deployment, fake: FakeCloudflareDns, provider: str, status: str, expected: tuple
) -> None:
    user = await add_user(deployment.env, "alice")
    node_id = await add_node(deployment.env, user, provider=provider, status=status)
    with pytest.raises(SamError) as refused:
        await origin_ca.certify_node(deployment, node_id, csr_for("x.localhost")[0])
    assert (status_for(refused.value), refused.value.code) == expected
    assert fake.requests == []


async def test_an_unknown_node_is_a_404(deployment: Deployment) -> None:
    with pytest.raises(SamError) as refused:
        await origin_ca.certify_node(deployment, "n404", csr_for("x.localhost")[0])
    assert status_for(refused.value) == 404


async def test_a_token_without_the_permission_names_it(
    deployment: Deployment, fake: FakeCloudflareDns, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(cloudflare_api, "CLOUDFLARE_RETRY", RetryPolicy(attempts=1))
    node_id = await cloud_node(deployment)
    fake.fail_next("POST", 403, 10000, "Authentication error")
    with pytest.raises(SamError) as refused:
        await origin_ca.certify_node(deployment, node_id, csr_for("x.localhost")[0])
    assert status_for(refused.value) == 502
    assert "SSL and Certificates" in refused.value.message
    assert fake.token not in refused.value.message


async def test_revoking_by_name_takes_exactly_that_names_certificates(
    deployment: Deployment, fake: FakeCloudflareDns
) -> None:
    first, second = await cloud_node(deployment), await cloud_node(deployment, "running")
    for node_id in (first, first, second):
        await origin_ca.certify_node(deployment, node_id, csr_for("x.localhost")[0])
    config = deployment.config
    name = dns.vm_hostname(config, first)
    assert await origin_ca.revoke_for(config, name) == 2
    assert fake.live_certificates(name) == []
    assert len(fake.live_certificates(dns.vm_hostname(config, second))) == 1
    assert await origin_ca.revoke_for(config, name) == 0, "already revoked: nothing to do"
