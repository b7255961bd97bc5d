"""The SAM node agent: the asyncio daemon on each VM (terminals, devcontainers, ACP)."""
