"""Node bootstrap tokens: how a new node gets its callback token without a credential in
its cloud-init.

    token = await issue(deployment, node_id)   random; KV `bootstrap:<sha256>` → node id,
                                               expiring after BOOTSTRAP_TTL_SECONDS
    node_id = await redeem(deployment, token)  once, for a node still being made:
                                               InvalidBootstrapToken for an unknown,
                                               expired or used token, or a node since deleted
    await revoke(deployment, token)            a node that was never made

Single use holds across Cloudflare's locations: KV alone is eventually consistent (a
deleted key can still be read elsewhere for a while), so `redeem` also claims the token's
hash in D1 (`bootstrap_redemptions`, first INSERT wins). Only hashes are stored anywhere.
"""

import hashlib
import json
import logging
import re
import secrets

from worker.deployment import Deployment
from worker.errors import Unauthorized
from worker.logs import event

log = logging.getLogger("sam.bootstrap")

BOOTSTRAP_TTL_SECONDS = 15 * 60
BOOTSTRAP_TOKEN_BYTES = 32
KV_PREFIX = "bootstrap:"
# secrets.token_urlsafe(32) is 43 characters; anything else is not ours.
TOKEN_PATTERN = re.compile(r"[A-Za-z0-9_-]{43}")
# A node joins only while it is being made; a deleted or failed one never does.
JOINABLE_STATUSES = ("pending", "creating")


class InvalidBootstrapToken(Unauthorized):
    def __init__(self) -> None:
        super().__init__(
            "invalid_bootstrap_token",
            "This bootstrap token is unknown, expired or already used. A node's bootstrap "
            "token works once, within 15 minutes of its creation: delete the node and "
            "create a new one.",
        )


def _key(token: str) -> str:
    return KV_PREFIX + hashlib.sha256(token.encode()).hexdigest()


async def issue(deployment: Deployment, node_id: str) -> str:
    token = secrets.token_urlsafe(BOOTSTRAP_TOKEN_BYTES)
    await deployment.env.KV.put(
        _key(token), json.dumps({"node_id": node_id}), expirationTtl=BOOTSTRAP_TTL_SECONDS
    )
    event(log, "bootstrap.issued", node_id=node_id)
    return token


async def revoke(deployment: Deployment, token: str) -> None:
    if TOKEN_PATTERN.fullmatch(token):
        await deployment.env.KV.delete(_key(token))


async def redeem(deployment: Deployment, token: str) -> str:
    """The node id the token was issued for; it never works again."""
    if not TOKEN_PATTERN.fullmatch(token):
        raise InvalidBootstrapToken()
    key = _key(token)
    stored = await deployment.env.KV.get(key)
    if stored is None:
        raise InvalidBootstrapToken()
    await deployment.env.KV.delete(key)
    node_id = json.loads(stored)["node_id"]
    claimed = (
        await deployment.env.DATABASE.prepare(
            "INSERT INTO bootstrap_redemptions (token_hash, node_id) VALUES (?, ?) "
            "ON CONFLICT (token_hash) DO NOTHING RETURNING token_hash"
        )
        .bind(key.removeprefix(KV_PREFIX), node_id)
        .first()
    )
    if claimed is None:
        event(log, "bootstrap.replayed", level=logging.WARNING, node_id=node_id)
        raise InvalidBootstrapToken()
    node = (
        await deployment.env.DATABASE.prepare("SELECT status FROM nodes WHERE id = ?")
        .bind(node_id)
        .first()
    )
    if node is None or node["status"] not in JOINABLE_STATUSES:
        # Deleted (or failed) while it booted: it gets no callback token.
        event(log, "bootstrap.node_gone", level=logging.WARNING, node_id=node_id)
        raise InvalidBootstrapToken()
    event(log, "bootstrap.redeemed", node_id=node_id)
    return node_id
