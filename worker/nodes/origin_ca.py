"""Cloud nodes' TLS certificates, from Cloudflare's Origin CA.

A node makes its own key at first boot and sends only a CSR (cloud-init's 35-tls.sh);
the control plane asks the Origin CA for a certificate for the node's one name,
`vm-{id}.{domain}`, whatever the CSR says, and hands the certificate back. The key never
leaves the VM, and Cloudflare's proxy ("Full (strict)") accepts the certificate for that
name only. docs/edge-to-node.md says why this design.

    pem = await certify_node(deployment, node_id, csr)   the node's certificate (PEM)
    await revoke_for(config, hostname)                   every certificate for exactly
                                                         that name is revoked (idempotent)

The API token needs Zone → SSL and Certificates → Edit (worker/nodes/cloudflare_api.py).
"""

import logging
import re
from typing import Any
from urllib.parse import quote, urlencode

from worker.config import Config
from worker.deployment import Deployment
from worker.errors import Conflict, InvalidInput, NotFound
from worker.logs import event
from worker.nodes import cloudflare_api, dns
from worker.nodes.cloudflare_api import ORIGIN_CA

log = logging.getLogger("sam.origin_ca")

# ECDSA P-256, as the node's openssl makes it; Cloudflare's longest validity, since the
# certificate is revoked with its node and VMs come and go (docs/edge-to-node.md).
REQUEST_TYPE = "origin-ecc"
VALIDITY_DAYS = 5475
CERTIFICATES_PER_PAGE = 50
MAX_CSR_BYTES = 4096
CSR_PEM = re.compile(
    r"-----BEGIN CERTIFICATE REQUEST-----\r?\n[A-Za-z0-9+/=\r\n]+-----END CERTIFICATE REQUEST-----"
    r"\r?\n?"
)
# A node asks while it boots (creating) and may ask again later (running).
CERTIFIABLE_STATUSES = ("creating", "running")
CLOUD_PROVIDERS = ("hetzner",)


class InvalidCsr(InvalidInput):
    def __init__(self) -> None:
        super().__init__(
            "invalid_csr",
            f"`csr` must be one PEM certificate signing request (at most {MAX_CSR_BYTES} "
            "bytes), as `openssl req -new` writes it.",
        )


async def certify_node(deployment: Deployment, node_id: str, csr: str) -> str:
    """The Origin CA certificate (PEM) for the node's name, over the node's own key."""
    if len(csr.encode()) > MAX_CSR_BYTES or not CSR_PEM.fullmatch(csr):
        raise InvalidCsr()
    node = (
        await deployment.env.DATABASE.prepare("SELECT provider, status FROM nodes WHERE id = ?")
        .bind(node_id)
        .first()
    )
    if node is None:
        raise NotFound("node_not_found", f"There is no node {node_id!r}.")
    if node["provider"] not in CLOUD_PROVIDERS:
        raise Conflict(
            "not_a_cloud_node",
            f"Node {node_id} is a {node['provider']} node: its agent's certificate comes from "
            "the machine that runs it, not from Cloudflare's Origin CA.",
        )
    if node["status"] not in CERTIFIABLE_STATUSES:
        raise Conflict(
            "node_not_certifiable",
            f"Node {node_id} is {node['status']}: only a node being made or running gets a "
            "certificate. Create a new node.",
        )
    config = deployment.config
    hostname = dns.vm_hostname(config, node_id)
    body = {
        "hostnames": [hostname],
        "requested_validity": VALIDITY_DAYS,
        "request_type": REQUEST_TYPE,
        "csr": csr,
    }
    issued = await cloudflare_api.call(config, ORIGIN_CA, "POST", "/certificates", body)
    event(log, "origin_ca.issued", node_id=node_id, hostname=hostname, id=issued.get("id"))
    return str(issued["certificate"])


async def revoke_for(config: Config, hostname: str) -> int:
    """Revoke every certificate for exactly `hostname`; how many were."""
    revoked = 0
    for certificate in await _certificates(config):
        if certificate.get("hostnames") != [hostname] or certificate.get("revoked_at"):
            continue
        path = f"/certificates/{quote(str(certificate['id']), safe='')}"
        revoked += await cloudflare_api.delete_if_present(config, ORIGIN_CA, path)
    if revoked:
        event(log, "origin_ca.revoked", hostname=hostname, certificates=revoked)
    return revoked


async def _certificates(config: Config) -> list[dict[str, Any]]:
    """The zone's Origin CA certificates, every page."""
    found: list[dict[str, Any]] = []
    page = 1
    while True:
        query = urlencode(
            {
                "zone_id": cloudflare_api.zone_id(config),
                "page": page,
                "per_page": CERTIFICATES_PER_PAGE,
            }
        )
        result = await cloudflare_api.call(config, ORIGIN_CA, "GET", f"/certificates?{query}")
        batch = [each for each in result or [] if isinstance(each, dict)]
        found += batch
        if len(batch) < CERTIFICATES_PER_PAGE:
            return found
        page += 1
