"""Personal API tokens for the CLI and scripts: `Authorization: Bearer sam_pat_...`.

POST   /api/tokens        {name} → the token, shown this once
GET    /api/tokens        the caller's live tokens (never the token itself)
DELETE /api/tokens/{id}   revoke one of the caller's tokens (404 for anyone else's)
"""

from typing import Annotated

from fastapi import APIRouter, Depends, Response
from pydantic import BaseModel, Field, field_validator

from worker.api.deps import CurrentUser, DeploymentDep
from worker.api.ratelimit import API_TOKEN, rate_limited
from worker.auth import api_tokens, grants
from worker.errors import Conflict, NotFound
from worker.workspaces import revocation

router = APIRouter(tags=["tokens"])

MAX_TOKEN_NAME_CHARS = 100


class NewToken(BaseModel):
    name: Annotated[str, Field(min_length=1, max_length=MAX_TOKEN_NAME_CHARS)]

    @field_validator("name")
    @classmethod
    def _printable(cls, name: str) -> str:
        name = name.strip()
        if not name or not name.isprintable():
            raise ValueError("must be printable text, not blank")
        return name


class TokenOut(BaseModel):
    id: str
    name: str
    created_at: str
    last_used_at: str | None


class CreatedToken(TokenOut):
    token: str  # shown this once; only its hash is kept


class TokenList(BaseModel):
    tokens: list[TokenOut]


@router.post(
    "/api/tokens",
    status_code=201,
    response_model=CreatedToken,
    dependencies=[Depends(rate_limited(API_TOKEN))],
)
async def create_token(
    body: NewToken,
    user: CurrentUser,
    deployment: DeploymentDep,
) -> CreatedToken:
    created = await api_tokens.create_token(deployment.env.DATABASE, user.id, body.name)
    if created is None:
        raise Conflict(
            "too_many_tokens",
            f"You already have {api_tokens.MAX_TOKENS_PER_USER} API tokens; revoke one "
            "(DELETE /api/tokens/{id}) before creating another.",
        )
    listing, token = created
    return CreatedToken(**listing, last_used_at=None, token=token)


@router.get("/api/tokens", response_model=TokenList)
async def list_tokens(user: CurrentUser, deployment: DeploymentDep) -> TokenList:
    return TokenList.model_validate(
        {"tokens": await api_tokens.list_tokens(deployment.env.DATABASE, user.id)}
    )


@router.delete("/api/tokens/{token_id}", status_code=204)
async def revoke_token(
    token_id: str,
    user: CurrentUser,
    deployment: DeploymentDep,
) -> Response:
    # Someone else's token and no token at all answer the same, so ids cannot be probed.
    digest = await api_tokens.revoke_token(
        deployment.env.DATABASE, user.id, token_id, deployment.clock
    )
    if digest is None:
        raise NotFound("token_not_found", f"You have no live API token {token_id!r}.")
    await revocation.revoke_on_nodes(deployment, user.id, grants.for_api_token_hash(digest))
    return Response(status_code=204)
