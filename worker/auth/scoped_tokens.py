"""The control plane's JWTs: ES256, one audience per use, each scoped to a node or workspace.

    audience        claims                   lifetime   who presents it, to whom
    sam:terminal    sub, node, workspace,    5 min      a browser terminal → the agent
                    grant
    sam:agent       node                     5 min      the control plane → an agent
    sam:node        node                     24 h       a node's callbacks → the control
                                                        plane (renewed on heartbeats)
    sam:workspace   node, workspace          1 h        a workspace's callbacks → the
                                                        control plane

Every token carries `iss` (the control plane's URL, `https://api.{domain}`), `aud`, `iat`,
`exp`, a random `jti` and the `kid` of its signing key in the header. The agent's verifier
(agent/auth.py, docs/protocols/agent-api.md) reads sam:agent and sam:terminal with the
same claim names. Tokens are JWS compact ES256 (worker/auth/jws.py, which pins the
algorithm before any key is looked up); `exp`, `iat` and `nbf` are checked on the
deployment's clock.

    mint_terminal_token / mint_agent_token / mint_node_token / mint_workspace_token
    verify(deployment, token, audience, node=..., workspace=...) -> claims
        InvalidToken (Unauthorized): not ours, forged, expired, unknown kid, wrong aud or iss
        WrongScope   (Forbidden): valid, but for another node or workspace
    jwks(deployment) -> the published key set, for /.well-known/jwks.json

Every function takes the deployment (worker/deployment.py): its D1 holds the keys, its
settings name the issuer and the key that seals them, its clock stamps `iat`.
"""

import secrets
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from worker.auth import jws, keys
from worker.auth.jws import InvalidToken
from worker.config import Config
from worker.deployment import Deployment
from worker.errors import Forbidden


class Audience(StrEnum):
    TERMINAL = "sam:terminal"
    AGENT = "sam:agent"
    NODE = "sam:node"
    WORKSPACE = "sam:workspace"


TERMINAL_TOKEN_SECONDS = 5 * 60
AGENT_TOKEN_SECONDS = 5 * 60
# Long enough to ride out a control-plane outage; heartbeats hand the node a fresh one.
NODE_TOKEN_SECONDS = 24 * 60 * 60
# Covers provisioning (timed out after 30 min by cron) with room to report the outcome.
WORKSPACE_TOKEN_SECONDS = 60 * 60

LIFETIME_SECONDS: dict[Audience, int] = {
    Audience.TERMINAL: TERMINAL_TOKEN_SECONDS,
    Audience.AGENT: AGENT_TOKEN_SECONDS,
    Audience.NODE: NODE_TOKEN_SECONDS,
    Audience.WORKSPACE: WORKSPACE_TOKEN_SECONDS,
}
SCOPE_CLAIMS: dict[Audience, tuple[str, ...]] = {
    # `grant`: the session or API token it was minted under (worker/auth/grants.py).
    Audience.TERMINAL: ("sub", "node", "workspace", "grant"),
    Audience.AGENT: ("node",),
    Audience.NODE: ("node",),
    Audience.WORKSPACE: ("node", "workspace"),
}
# Clock skew allowed between isolates and machines (the agent allows the same).
LEEWAY_SECONDS = 30
MAX_TOKEN_LIFETIME_SECONDS = max(LIFETIME_SECONDS.values())
# A retired key stays published (and trusted) until the last token it signed has expired.
KEY_RETENTION_SECONDS = MAX_TOKEN_LIFETIME_SECONDS + LEEWAY_SECONDS
MAX_TOKEN_BYTES = 8 * 1024
JTI_BYTES = 16
REGISTERED_CLAIMS = ("iss", "aud", "iat", "exp", "jti")


class WrongScope(Forbidden):
    def __init__(self, reason: str) -> None:
        super().__init__("token_scope", f"The token is valid but not for this: {reason}.")


@dataclass(frozen=True)
class Minted:
    token: str
    expires_at: int  # seconds since the epoch


def control_plane_url(config: Config) -> str:
    """`https://api.{domain}`; plain http for a `localhost` domain (`sam dev`)."""
    host = config.domain.split(":", 1)[0]
    local = host == "localhost" or host.endswith(".localhost") or host == "127.0.0.1"
    return f"{'http' if local else 'https'}://api.{config.domain}"


async def mint(deployment: Deployment, audience: Audience, claims: dict[str, str]) -> Minted:
    """A signed token for `audience` carrying exactly its scope claims."""
    assert set(claims) == set(SCOPE_CLAIMS[audience]), f"{audience} takes {SCOPE_CLAIMS}"
    assert all(isinstance(v, str) and v for v in claims.values()), "scope claims are ids"
    issued = int(deployment.now())
    expires = issued + LIFETIME_SECONDS[audience]
    key = await keys.active_key(deployment)
    payload = {
        **claims,
        "iss": control_plane_url(deployment.config),
        "aud": str(audience),
        "iat": issued,
        "exp": expires,
        "jti": secrets.token_urlsafe(JTI_BYTES),
    }
    return Minted(await jws.sign(payload, key.pkcs8, key.kid), expires)


async def mint_terminal_token(
    deployment: Deployment, user_id: str, node_id: str, workspace_id: str, grant: str
) -> Minted:
    claims = {"sub": user_id, "node": node_id, "workspace": workspace_id, "grant": grant}
    return await mint(deployment, Audience.TERMINAL, claims)


async def mint_agent_token(deployment: Deployment, node_id: str) -> Minted:
    return await mint(deployment, Audience.AGENT, {"node": node_id})


async def mint_node_token(deployment: Deployment, node_id: str) -> Minted:
    return await mint(deployment, Audience.NODE, {"node": node_id})


async def mint_workspace_token(deployment: Deployment, node_id: str, workspace_id: str) -> Minted:
    claims = {"node": node_id, "workspace": workspace_id}
    return await mint(deployment, Audience.WORKSPACE, claims)


async def verify(
    deployment: Deployment,
    token: str,
    audience: Audience,
    node: str | None = None,
    workspace: str | None = None,
) -> dict[str, Any]:
    """The claims of a token this control plane signed for `audience`.

    Raises InvalidToken for anything forged, expired or meant for another audience,
    WrongScope when `node` / `workspace` are given and the token names others.
    """
    if len(token) > MAX_TOKEN_BYTES:
        raise InvalidToken(f"it is longer than {MAX_TOKEN_BYTES} bytes")
    parsed = jws.parse(token)  # refuses any algorithm but ES256 before a key is read
    kid = parsed.header.get("kid")
    if not isinstance(kid, str) or not kid:
        raise InvalidToken("its header has no kid")
    published = await keys.published_keys(deployment, KEY_RETENTION_SECONDS)
    trusted = {key.kid: key for key in published}
    if kid not in trusted:
        raise InvalidToken(f"its signing key {kid!r} is unknown")
    claims = await jws.verify(
        parsed,
        trusted[kid].public_jwk,
        issuer=control_plane_url(deployment.config),
        audience=str(audience),
        now=deployment.now(),
        leeway=LEEWAY_SECONDS,
        required=REGISTERED_CLAIMS,
    )
    for name in SCOPE_CLAIMS[audience]:
        if not isinstance(claims.get(name), str) or not claims[name]:
            raise InvalidToken(f"its {name!r} claim is missing")
    if node is not None and claims["node"] != node:
        raise WrongScope(f"it is for node {claims['node']!r}, not {node!r}")
    if workspace is not None and claims.get("workspace") != workspace:
        raise WrongScope(f"it is not for workspace {workspace!r}")
    return claims


async def jwks(deployment: Deployment) -> dict[str, Any]:
    """The public keys a verifier needs now: at least the active one (made if none yet)."""
    published = await keys.published_keys(deployment, KEY_RETENTION_SECONDS)
    if not any(key.retired_at is None for key in published):
        await keys.active_key(deployment)
        published = await keys.published_keys(deployment, KEY_RETENTION_SECONDS)
    return {"keys": [key.public_jwk for key in published]}


async def rotate_signing_key(deployment: Deployment) -> keys.Rotation:
    """A new active key; the old one keeps verifying until its tokens have expired."""
    return await keys.rotate(deployment, KEY_RETENTION_SECONDS)
