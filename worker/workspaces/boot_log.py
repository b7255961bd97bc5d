"""A workspace's boot log: the control plane's own steps and the agent's, in KV.

    KV  bootlog:<workspace id>  →  {"entries": [entry, ...], "dropped": n}   (7 days)

An entry is the agent's shape (docs/protocols/agent-api.md) plus where it came from:
`{"step", "status": "started"|"succeeded"|"failed", "message", "detail", "timestamp",
"source": "control-plane"|"agent"}`, in the order it arrived. The list is bounded by
MAX_ENTRIES and MAX_BYTES: the oldest entries go first, counted in `dropped`.

Writers take turns rather than lock: the control plane writes its steps before it hands
the workspace to the agent (requested, node, dispatching) and the agent's callbacks come
one at a time from its queue, so two appends rarely overlap. Cloudflare KV accepts about
one write per second per key, so a refused write is tried once more a little later; if
that fails too the entry is lost (logged) and the agent's own log still has it.
"""

import asyncio
import datetime
import json
import logging
from typing import Any

from worker.deployment import Deployment
from worker.logs import event

log = logging.getLogger("sam.boot_log")

KEY_PREFIX = "bootlog:"
MAX_ENTRIES = 500
MAX_BYTES = 256 * 1024  # well under KV's 25 MiB value limit; a boot log is read whole
TTL_SECONDS = 7 * 24 * 60 * 60
MAX_STEP_CHARS = 64
MAX_MESSAGE_CHARS = 1000
MAX_DETAIL_CHARS = 8000
# Cloudflare KV: at most one write per second to the same key.
KV_WRITE_RETRY_SECONDS = 1.1
STATUSES = ("started", "succeeded", "failed")


class Source:
    CONTROL_PLANE = "control-plane"
    AGENT = "agent"


def _key(workspace_id: str) -> str:
    return KEY_PREFIX + workspace_id


def timestamp_of(epoch: float) -> str:
    return datetime.datetime.fromtimestamp(epoch, datetime.UTC).isoformat(timespec="milliseconds")


def entry(
    step: str,
    status: str,
    message: str,
    detail: str | None,
    timestamp: str,
    source: str = Source.CONTROL_PLANE,
) -> dict[str, Any]:
    """A well-formed entry, every text cut to its cap."""
    assert status in STATUSES, status
    return {
        "step": step[:MAX_STEP_CHARS],
        "status": status,
        "message": message[:MAX_MESSAGE_CHARS],
        "detail": None if detail is None else detail[:MAX_DETAIL_CHARS],
        "timestamp": timestamp,
        "source": source,
    }


async def read(deployment: Deployment, workspace_id: str) -> dict[str, Any]:
    """`{"entries": [...], "dropped": n}` (empty for a workspace with no log yet)."""
    raw = await deployment.env.KV.get(_key(workspace_id))
    if raw is None:
        return {"entries": [], "dropped": 0}
    try:
        stored = json.loads(raw)
    except ValueError:
        return {"entries": [], "dropped": 0}
    return {"entries": list(stored.get("entries") or []), "dropped": int(stored.get("dropped", 0))}


async def append(deployment: Deployment, workspace_id: str, new: dict[str, Any]) -> None:
    """Add `new` at the end; never raises (a lost entry must not fail its caller)."""
    for attempt in range(2):
        stored = await read(deployment, workspace_id)
        entries = [*stored["entries"], new]
        dropped = stored["dropped"]
        text = _encode(entries, dropped)
        while len(entries) > MAX_ENTRIES or len(text.encode()) > MAX_BYTES:
            entries.pop(0)
            dropped += 1
            text = _encode(entries, dropped)
        try:
            await deployment.env.KV.put(_key(workspace_id), text, expirationTtl=TTL_SECONDS)
            return
        except Exception as exc:  # KV's write limit is a JS error on Cloudflare
            if attempt == 0:
                await asyncio.sleep(KV_WRITE_RETRY_SECONDS)
                continue
            event(
                log,
                "boot_log.write_failed",
                level=logging.WARNING,
                workspace_id=workspace_id,
                error=type(exc).__name__,
            )


async def step(
    deployment: Deployment,
    workspace_id: str,
    name: str,
    status: str,
    message: str,
    detail: str | None = None,
) -> None:
    """One of the control plane's own steps."""
    now = timestamp_of(deployment.now())
    await append(deployment, workspace_id, entry(name, status, message, detail, now))


async def forget(deployment: Deployment, workspace_id: str) -> None:
    await deployment.env.KV.delete(_key(workspace_id))


def _encode(entries: list[dict[str, Any]], dropped: int) -> str:
    return json.dumps({"entries": entries, "dropped": dropped}, separators=(",", ":"))
