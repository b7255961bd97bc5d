"""NodeLifecycle: one Durable Object per node (`idFromName(node_id)`), its warm pool state.

    active ──release of the last workspace──▶ warm ──warm window ends (alarm)──▶ destroying
      ▲                                        │
      └──────────── try_claim ─────────────────┘          destroy() from any state ──▶ destroying

The object is the truth about how many workspaces a node holds: `try_claim` admits a
workspace only while the node is active or warm and below capacity
(SAM_MAX_WORKSPACES_PER_NODE). Every decision is one synchronous SQL transaction on the
object's own storage, with no await inside, so concurrent claims cannot interleave on
either platform and never exceed capacity. A claim during the warm window cancels the
teardown (the alarm is deleted). When the window ends (SAM_WARM_TIMEOUT_SECONDS) the
alarm moves the node to destroying and tears it down through `worker.nodes.service.teardown`
(VM, DNS record, D1 row): idempotent, retried by a fresh alarm until it succeeds. A warm
node holding a workspace with work SAM could not save (`needs_attention`,
worker/workspaces/idle.py) is kept: its window starts again, until the owner decides.
D1's `nodes.warm_since` / `workspace_count` mirror the state for queries (ordered by a
sequence number); they are hints, never consulted for a decision here.

RPC methods take the node id first (the object stores it on first use: an id cannot be
read back from a name on every platform) and, where time matters, the caller's `now`
(seconds since the epoch, from the caller's deployment clock: RPC arguments cross by
value, a clock cannot). The object's own clock serves only its alarm. Each answers a
snapshot:
`{"node_id", "state", "workspaces": [ids], "capacity", "warm_until", "claimed"?}`.
"""

import logging
from collections.abc import Callable
from typing import Any, TypeVar

from worker.deployment import Deployment
from worker.logs import event
from worker.nodes import service as nodes
from worker.platform import DurableObject
from worker.states import Kind, Lifecycle, transition

log = logging.getLogger("sam.node_lifecycle")

T = TypeVar("T")

# A failed teardown (the provider or DNS API down) is tried again this much later.
TEARDOWN_RETRY_SECONDS = 60.0

_SCHEMA = """
CREATE TABLE IF NOT EXISTS lifecycle (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    node_id TEXT NOT NULL,
    state TEXT NOT NULL,
    warm_since REAL,
    warm_until REAL,
    seq INTEGER NOT NULL,
    torn_down INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS claims (
    workspace_id TEXT PRIMARY KEY,
    claimed_at REAL NOT NULL
);
"""


class NodeLifecycle(DurableObject):
    def __init__(self, ctx: Any, env: Any) -> None:
        super().__init__(ctx, env)
        self.deployment = Deployment.of(env)
        ctx.storage.sql.exec(_SCHEMA)

    # --- RPC -------------------------------------------------------------------------------

    async def try_claim(self, node_id: str, workspace_id: str, now: float) -> dict:
        """Admit `workspace_id` if there is room; a workspace already admitted is kept."""
        capacity = self._capacity()

        def step() -> tuple[bool, bool]:
            """(admitted, the warm window was cancelled)."""
            state = self._state(node_id)
            if state == Lifecycle.DESTROYING:
                return False, False
            if self._sql("SELECT 1 FROM claims WHERE workspace_id = ?", workspace_id):
                return True, False
            if self._count() >= capacity:
                return False, False
            self._sql("INSERT INTO claims VALUES (?, ?)", workspace_id, now)
            self._bump()
            if state == Lifecycle.WARM:
                self._move(Lifecycle.ACTIVE, warm_since=None, warm_until=None)
                return True, True
            return True, False

        claimed, cancelled = self._atomically(step)
        if cancelled:
            # The teardown is called off: a later release starts a new window.
            await self.ctx.storage.deleteAlarm()
        event(log, "node.claim", node_id=node_id, workspace=workspace_id, claimed=claimed)
        return await self._report(claimed=claimed)

    async def release(self, node_id: str, workspace_id: str, now: float) -> dict:
        """Forget `workspace_id`; the last one out starts the warm window."""
        window = self.deployment.config.warm_timeout_seconds

        def step() -> float | None:
            state = self._state(node_id)
            if not self._sql("DELETE FROM claims WHERE workspace_id = ? RETURNING 1", workspace_id):
                return None  # not held: nothing changes (a repeated release)
            self._bump()
            if state != Lifecycle.ACTIVE or self._count() > 0:
                return None
            self._move(Lifecycle.WARM, warm_since=now, warm_until=now + window)
            return now + window

        warm_until = self._atomically(step)
        if warm_until is not None:
            await self.ctx.storage.setAlarm(warm_until * 1000)
            event(log, "node.warm", node_id=node_id, warm_until=warm_until)
        return await self._report()

    async def destroy(self, node_id: str, now: float) -> dict:
        """Start the owner's delete: destroying (no more claims) unless workspaces are held.

        The caller tears the node down itself and then calls `destroyed`; until then a
        retry alarm is armed, so a teardown that fails is finished later by `alarm()`.
        """

        def step() -> bool:
            if self._state(node_id) != Lifecycle.DESTROYING and self._count() > 0:
                return False
            self._destroying(node_id)
            return True

        destroying = self._atomically(step)
        if destroying:
            await self.ctx.storage.setAlarm((now + TEARDOWN_RETRY_SECONDS) * 1000)
        return await self._report(destroying=destroying)

    async def destroyed(self, node_id: str) -> dict:
        """The caller's teardown succeeded: nothing is left to retry."""
        self._atomically(lambda: self._mark_torn_down(node_id))
        await self.ctx.storage.deleteAlarm()
        return self._snapshot()

    async def expire(self, node_id: str, now: float) -> dict:
        """Cron's safety net: what the alarm does, if the warm window has passed by `now`."""
        if await self._kept(node_id, now):
            return await self._report()

        def step() -> bool:
            row = self._row(node_id)
            if row[1] == Lifecycle.WARM and row[3] is not None and row[3] <= now:
                self._destroying(node_id)
            return self._state(node_id) == Lifecycle.DESTROYING and not self._row(node_id)[5]

        if self._atomically(step):
            await self._teardown(node_id, now)
        return await self._report()

    async def status(self, node_id: str) -> dict:
        self._atomically(lambda: self._state(node_id))
        return self._snapshot()

    async def alarm(self, info: Any = None) -> None:
        """The warm window ended (or a teardown is being retried)."""
        row = self._existing_row()
        if row is None:
            return
        node_id = row[0]
        # The window that ended is the alarm's time (the object has no caller's clock).
        ended = row[3] if row[3] is not None else self.deployment.now()
        if await self._kept(node_id, ended):
            return

        def step() -> bool:
            if self._state(node_id) == Lifecycle.WARM and self._count() == 0:
                self._destroying(node_id)
            return self._state(node_id) == Lifecycle.DESTROYING and not self._row(node_id)[5]

        if self._atomically(step):
            await self._teardown(node_id, self.deployment.now())

    # --- state -----------------------------------------------------------------------------

    def _state(self, node_id: str) -> str:
        return self._row(node_id)[1]

    def _row(self, node_id: str) -> list[Any]:
        """(node_id, state, warm_since, warm_until, seq, torn_down); created active."""
        row = self._existing_row()
        if row is None:
            self._sql(
                "INSERT INTO lifecycle (id, node_id, state, seq) VALUES (1, ?, ?, 1)",
                node_id,
                str(Lifecycle.ACTIVE),
            )
            row = self._existing_row()
        assert row is not None and row[0] == node_id, f"lifecycle of {row}, asked for {node_id}"
        return row

    def _existing_row(self) -> list[Any] | None:
        rows = self._sql(
            "SELECT node_id, state, warm_since, warm_until, seq, torn_down FROM lifecycle"
        )
        return rows[0] if rows else None

    def _count(self) -> int:
        return int(self._sql("SELECT count(*) FROM claims")[0][0])

    def _bump(self) -> None:
        self._sql("UPDATE lifecycle SET seq = seq + 1")

    def _move(self, new: Lifecycle, **fields: float | None) -> None:
        current = self._existing_row()
        assert current is not None
        transition(Kind.LIFECYCLE, current[1], new)
        self._sql(
            "UPDATE lifecycle SET state = ?, warm_since = ?, warm_until = ?, seq = seq + 1",
            str(new),
            fields.get("warm_since"),
            fields.get("warm_until"),
        )

    def _destroying(self, node_id: str) -> None:
        if self._state(node_id) != Lifecycle.DESTROYING:
            self._move(Lifecycle.DESTROYING, warm_since=None, warm_until=None)

    def _mark_torn_down(self, node_id: str) -> None:
        self._destroying(node_id)
        self._sql("UPDATE lifecycle SET torn_down = 1")

    def _snapshot(self, **extra: Any) -> dict:
        row = self._existing_row()
        assert row is not None
        claims = [r[0] for r in self._sql("SELECT workspace_id FROM claims ORDER BY claimed_at")]
        return {
            "node_id": row[0],
            "state": row[1],
            "workspaces": claims,
            "capacity": self._capacity(),
            "warm_since": row[2],
            "warm_until": row[3],
            "seq": int(row[4]),
            "torn_down": bool(row[5]),
            **extra,
        }

    def _capacity(self) -> int:
        return self.deployment.config.max_workspaces_per_node

    # --- effects outside the object ---------------------------------------------------------

    async def _kept(self, node_id: str, now: float) -> bool:
        """A warm node whose workspaces hold unsaved work stays: a new window is armed."""
        if self._atomically(lambda: self._state(node_id)) != Lifecycle.WARM:
            return False
        if not await nodes.holds_unsaved_work(self.deployment, node_id):
            return False
        window = self.deployment.config.warm_timeout_seconds
        self._atomically(
            lambda: self._sql(
                "UPDATE lifecycle SET warm_since = ?, warm_until = ?, seq = seq + 1",
                now,
                now + window,
            )
        )
        await self.ctx.storage.setAlarm((now + window) * 1000)
        event(log, "node.kept", node_id=node_id, reason="unsaved_work")
        await self._report()
        return True

    async def _teardown(self, node_id: str, now: float) -> None:
        # Armed first: if the teardown fails (or the object is evicted mid-way), the alarm
        # tries again; an alarm set inside alarm() stands instead of the runtime's retry.
        await self.ctx.storage.setAlarm((now + TEARDOWN_RETRY_SECONDS) * 1000)
        event(log, "node.teardown", node_id=node_id)
        await nodes.teardown(self.deployment, node_id)
        self._atomically(lambda: self._mark_torn_down(node_id))
        await self.ctx.storage.deleteAlarm()
        event(log, "node.torn_down", node_id=node_id)

    async def _report(self, **extra: Any) -> dict:
        """The snapshot, after mirroring it into D1 (ordered by `seq`, so never regressing)."""
        snapshot = self._snapshot(**extra)
        if not snapshot["torn_down"]:
            await nodes.mirror_lifecycle(
                self.deployment,
                snapshot["node_id"],
                snapshot["seq"],
                snapshot["warm_since"],
                len(snapshot["workspaces"]),
            )
        return snapshot

    # --- storage plumbing -------------------------------------------------------------------

    def _sql(self, query: str, *bindings: Any) -> list[list[Any]]:
        return [list(row) for row in self.ctx.storage.sql.exec(query, *bindings).raw()]

    def _atomically(self, step: Callable[[], T]) -> T:
        # The result is kept on the Python side: on Cloudflare a value returned through
        # transactionSync crosses into JS and back.
        box: list[T] = []
        self.ctx.storage.transactionSync(lambda: box.append(step()))
        return box[0]
