"""What a shell process printed, collected as it arrives, for the PTY and exec-attach tests."""

import asyncio

TIMEOUT_SECONDS = 30.0  # for one awaited condition; generous, so load cannot trip it


class Output:
    """Collects a process's output and waits for text in it."""

    def __init__(self) -> None:
        self.data = bytearray()
        self.changed = asyncio.Event()

    def __call__(self, chunk: bytes) -> None:
        self.data += chunk
        self.changed.set()

    async def wait_for(self, needle: bytes) -> None:
        async with asyncio.timeout(TIMEOUT_SECONDS):
            while needle not in self.data:
                self.changed.clear()
                await self.changed.wait()
