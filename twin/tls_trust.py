"""Which certificate authorities the twin's outbound `fetch` trusts, by host.

A Worker's `fetch` trusts the public Web PKI only; where it reaches a node's agent, the
TLS to the agent's own certificate (a Cloudflare Origin CA one) is checked by Cloudflare's
proxy in "Full (strict)" mode. Locally nothing stands in between, so the twin checks that
hop itself, against the certificate authorities the host program names:

    trust_loopback_cas([ca.pem, ...])   `localhost` and `*.localhost` upstreams (the names
                                        twin/loopback.py resolves to this machine) are
                                        verified against exactly these CAs
    verification_for(url)               what aiohttp's `ssl=` gets for `url`: that
                                        context for a loopback name, True (the system's
                                        public roots, hostname checked) for any other

With no CA named, a loopback name's certificate is never trusted: verification is never
switched off.
"""

import ssl
from collections.abc import Iterable
from pathlib import Path
from urllib.parse import urlsplit

from twin.loopback import is_loopback_name

_loopback_cas: tuple[Path, ...] = ()
_loopback_context: ssl.SSLContext | None = None


def trust_loopback_cas(cafiles: Iterable[Path]) -> None:
    """From now on, `*.localhost` upstreams are verified against exactly `cafiles`."""
    global _loopback_cas, _loopback_context
    _loopback_cas = tuple(cafiles)
    _loopback_context = None  # built again on next use


def verification_for(url: str) -> ssl.SSLContext | bool:
    host = urlsplit(url).hostname or ""
    if not is_loopback_name(host):
        return True
    global _loopback_context
    if _loopback_context is None:
        # PROTOCOL_TLS_CLIENT checks the hostname and requires a certificate, and, unlike
        # create_default_context(), loads no system roots: only the CAs named.
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        context.minimum_version = ssl.TLSVersion.TLSv1_2
        for cafile in _loopback_cas:
            context.load_verify_locations(cafile=cafile)
        _loopback_context = context
    return _loopback_context
