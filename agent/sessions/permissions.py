"""Permission requests of an agent session, relayed to its viewers.

The adapter's `session/request_permission` waits here until the first answer: a viewer's
choice of one of the offered options, the timeout (the first `reject_once` option the
adapter offered, else cancelled), or a `session/cancel` and a stop (cancelled, as the ACP
spec requires). Later answers to a settled request are refused. Request ids are random, so
an answer delivered late (the control plane retries) never settles a later request of the
session, also not one asked after the node agent restarted.
"""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

from acp.schema import (
    AllowedOutcome,
    DeniedOutcome,
    PermissionOption,
    RequestPermissionResponse,
)

Settler = Literal["viewer", "timeout", "cancel", "stop"]
# (request_id, option_id or None for cancelled, who settled it)
ResolvedHandler = Callable[[str, str | None, Settler], None]


class UnknownRequest(Exception):
    """No open permission request with that id (never asked, or already answered)."""


class UnknownOption(Exception):
    """The answer names an option the request did not offer."""


@dataclass
class _Open:
    options: list[PermissionOption]
    answer: asyncio.Future[tuple[str | None, Settler]]


class PermissionBroker:
    def __init__(self, timeout_seconds: float, on_resolved: ResolvedHandler) -> None:
        self._timeout_seconds = timeout_seconds
        self._on_resolved = on_resolved
        self._open: dict[str, _Open] = {}

    def open(self, options: list[PermissionOption]) -> str:
        request_id = f"perm-{secrets.token_hex(8)}"
        answer = asyncio.get_running_loop().create_future()
        self._open[request_id] = _Open(options, answer)
        return request_id

    async def wait(self, request_id: str) -> RequestPermissionResponse:
        """The answer to an opened request, as the adapter expects it."""
        entry = self._open[request_id]
        try:
            option_id, by = await asyncio.wait_for(
                asyncio.shield(entry.answer), self._timeout_seconds
            )
        except TimeoutError:
            option_id = next((o.option_id for o in entry.options if o.kind == "reject_once"), None)
            by = "timeout"
        self._open.pop(request_id, None)
        self._on_resolved(request_id, option_id, by)
        if option_id is None:
            return RequestPermissionResponse(outcome=DeniedOutcome(outcome="cancelled"))
        return RequestPermissionResponse(
            outcome=AllowedOutcome(outcome="selected", option_id=option_id)
        )

    def answer(self, request_id: str, option_id: str) -> None:
        entry = self._open.get(request_id)
        if entry is None or entry.answer.done():
            raise UnknownRequest(request_id)
        if option_id not in {o.option_id for o in entry.options}:
            offered = [o.option_id for o in entry.options]
            raise UnknownOption(f"{option_id!r} is not one of {offered}")
        entry.answer.set_result((option_id, "viewer"))

    def cancel_all(self, by: Settler) -> None:
        for entry in self._open.values():
            if not entry.answer.done():
                entry.answer.set_result((None, by))
