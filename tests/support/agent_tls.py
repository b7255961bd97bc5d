"""Clients that reach an agent serving TLS as `vm-{id}.localhost`, verifying it as the edge
does: against one CA, for that name, over a connection to 127.0.0.1 (the system resolver
here does not know `*.localhost`; the name goes in SNI and the hostname check).

    with verified_client(ca_pem, "vm-n1.localhost", port) as client:
        client.get("/health")
"""

import ssl
from pathlib import Path
from typing import Any

import httpx

from devtools.local_ca import CA_CERT_FILE
from devtools.local_nodes import LOCAL_CA_DIR, agent_hostname


def trusting(ca: Path) -> ssl.SSLContext:
    """A client context that trusts `ca` alone (no system roots)."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.load_verify_locations(cafile=ca)
    return context


class _NamedTransport(httpx.HTTPTransport):
    def __init__(self, hostname: str, verify: ssl.SSLContext) -> None:
        super().__init__(verify=verify)
        self._hostname = hostname

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        request.extensions["sni_hostname"] = self._hostname
        return super().handle_request(request)


def verified_client(ca: Path, hostname: str, port: int, **kwargs: Any) -> httpx.Client:
    """httpx to https://127.0.0.1:`port`, verified as `hostname` against `ca` only."""
    kwargs.setdefault("timeout", 10.0)
    return httpx.Client(
        base_url=f"https://127.0.0.1:{port}",
        transport=_NamedTransport(hostname, trusting(ca)),
        **kwargs,
    )


def edge_ca(data_dir: Path) -> Path:
    """The CA a local edge (`sam dev --data-dir data_dir`) certifies its local nodes with."""
    return data_dir / LOCAL_CA_DIR / CA_CERT_FILE


def local_node_client(data_dir: Path, node_id: str, port: int, **kwargs: Any) -> httpx.Client:
    """A verified client to a local node of the edge whose data is in `data_dir`."""
    return verified_client(edge_ca(data_dir), agent_hostname(node_id), port, **kwargs)
