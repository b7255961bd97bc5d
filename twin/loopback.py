"""Name resolution for clients on a development machine: `localhost` and `*.localhost` are
127.0.0.1, as browsers resolve them (glibc may not); every other name as usual.

The URL keeps its host, so the Host header still routes on the local edge. Used by the
edge's outbound `fetch` (twin/upstream.py), which also verifies these names' TLS
certificates against the CAs the host program names (twin/tls_trust.py).
"""

import socket

import aiohttp

LOOPBACK_SUFFIX = ".localhost"


def is_loopback_name(host: str) -> bool:
    name = host.lower().rstrip(".")
    return name == "localhost" or name.endswith(LOOPBACK_SUFFIX)


class LoopbackResolver(aiohttp.abc.AbstractResolver):
    """`localhost` and `*.localhost` → 127.0.0.1; every other name as usual."""

    def __init__(self) -> None:
        self._default = aiohttp.DefaultResolver()

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[aiohttp.abc.ResolveResult]:
        if is_loopback_name(host):
            return [
                aiohttp.abc.ResolveResult(
                    hostname=host,
                    host="127.0.0.1",
                    port=port,
                    family=socket.AF_INET,
                    proto=0,
                    flags=socket.AI_NUMERICHOST,
                )
            ]
        return await self._default.resolve(host, port, family)

    async def close(self) -> None:
        await self._default.close()
