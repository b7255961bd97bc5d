"""`GET /api/agent/download`: the node agent's artifact, for a new node's cloud-init.

Served from R2 under `agent/sam-agent-<version>.tar.gz`, the version this control plane
runs (wire/version.py), so a node always gets the agent that speaks its protocol. It
holds only the project's own code and public wheels, so it needs no credential (a node
has none yet when it downloads it). Put it there with `sam upload-agent` (local) or
`wrangler r2 object put` (production; see the README).
"""

from fastapi import APIRouter
from fastapi.responses import Response

from wire.version import VERSION
from worker.api.deps import DeploymentDep
from worker.errors import NotFound

router = APIRouter(tags=["nodes"])

ARTIFACT_CONTENT_TYPE = "application/gzip"


def artifact_key(version: str = VERSION) -> str:
    return f"agent/sam-agent-{version}.tar.gz"


@router.get(
    "/api/agent/download",
    response_class=Response,
    responses={200: {"content": {ARTIFACT_CONTENT_TYPE: {}}, "description": "the artifact"}},
)
async def download(deployment: DeploymentDep) -> Response:
    key = artifact_key()
    stored = await deployment.env.R2.get(key)
    if stored is None:
        raise NotFound(
            "agent_artifact_missing",
            f"The node agent {VERSION} is not uploaded yet (R2 key {key}). Build it with "
            f"scripts/build-agent, then run `sam upload-agent dist/sam-agent-{VERSION}.tar.gz` "
            "(sam dev) or the production upload step in the README.",
        )
    # Whole, not streamed: the artifact (~25 MB) fits a Worker's memory, and the ASGI
    # bridge answers with one body either way.
    body = await stored.arrayBuffer()
    return Response(
        content=bytes(body),
        media_type=ARTIFACT_CONTENT_TYPE,
        headers={
            "Content-Disposition": f'attachment; filename="sam-agent-{VERSION}.tar.gz"',
            "ETag": stored.httpEtag,
            "Cache-Control": "no-cache",
        },
    )
