"""`/api/admin/...`: operations on the deployment itself, for its admins only."""

import logging

from fastapi import APIRouter
from pydantic import BaseModel

from worker.api.deps import Admin, DeploymentDep
from worker.auth import scoped_tokens
from worker.logs import event

log = logging.getLogger("sam.admin")
router = APIRouter(tags=["admin"])


class RotatedKey(BaseModel):
    kid: str
    retired: list[str]
    retired_published_seconds: int


@router.post("/api/admin/signing-keys/rotate", response_model=RotatedKey)
async def rotate_signing_key(admin: Admin, deployment: DeploymentDep) -> RotatedKey:
    """Sign new tokens with a fresh key; the old one stays published until its tokens expire."""
    rotation = await scoped_tokens.rotate_signing_key(deployment)
    event(log, "signing_key.rotated", by=admin.id, kid=rotation.kid, retired=rotation.retired)
    return RotatedKey(
        kid=rotation.kid,
        retired=rotation.retired,
        retired_published_seconds=scoped_tokens.KEY_RETENTION_SECONDS,
    )
