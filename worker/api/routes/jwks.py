"""`GET /.well-known/jwks.json` on the api host: the keys that verify SAM's tokens.

Agents and any other verifier fetch this. It lists the active signing key and the retired
ones whose tokens may still be live, so a rotation needs no downtime: a verifier that
meets an unknown `kid` refetches and finds the new key here.
"""

from typing import Any

from fastapi import APIRouter
from fastapi.responses import JSONResponse
from pydantic import BaseModel

from worker.api.deps import DeploymentDep
from worker.auth import scoped_tokens

router = APIRouter(tags=["tokens"])

# Verifiers cache the set this long; a new key is found sooner through the unknown-kid
# refetch, and a retired key outlives any cache (scoped_tokens.KEY_RETENTION_SECONDS).
JWKS_MAX_AGE_SECONDS = 5 * 60


class Jwks(BaseModel):
    keys: list[dict[str, Any]]  # public JWKs (RFC 7517): kty, crv, x, y, kid, alg, use


# Answered as a JSONResponse for its media type and cache header; the model documents it.
@router.get("/.well-known/jwks.json", response_model=Jwks)
async def jwks(deployment: DeploymentDep) -> JSONResponse:
    return JSONResponse(
        await scoped_tokens.jwks(deployment),
        headers={"Cache-Control": f"public, max-age={JWKS_MAX_AGE_SECONDS}"},
        media_type="application/jwk-set+json",
    )
