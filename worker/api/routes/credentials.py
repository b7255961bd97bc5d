"""`/api/credentials`: a user's Hetzner token and agent API keys, write-only.

    POST   /api/credentials        {kind, label?, secret, base_url?}
                                   → 201 {id, kind, label, hint, base_url, created_at}
    GET    /api/credentials        the caller's credentials, hints only
    DELETE /api/credentials/{id}   the caller's own; anyone else's id is a 404

Every secret is checked against its provider before it is stored, so a typo shows up here
rather than as a failed provisioning or agent session later: a Hetzner token against the
Hetzner Cloud API, an agent key against its model API (worker/auth/agent_keys.py; an
Anthropic key may name the base URL of the user's own gateway). Secrets are never echoed, logged
or returned: validation errors name the field, never its value.
"""

import logging
from typing import Annotated

from fastapi import APIRouter, Depends, Response
from pydantic import BaseModel, ConfigDict, StringConstraints

from worker.api.deps import CurrentUser, DeploymentDep
from worker.api.ratelimit import API_TOKEN, rate_limited
from worker.auth.agent_keys import check_agent_key, checked_base_url
from worker.auth.credential_check import CredentialCheck, check_credential
from worker.auth.credentials import (
    Credential,
    CredentialKind,
    delete_credential,
    list_credentials,
    save_credential,
)
from worker.config import Config
from worker.errors import InvalidInput, NotFound
from worker.logs import event

log = logging.getLogger("sam.credentials")
router = APIRouter(tags=["credentials"])

MAX_SECRET_CHARS = 4096
MAX_LABEL_CHARS = 64
# Printable ASCII without spaces: every provider's keys look like this, and the Hetzner
# token goes into an HTTP header, where a CR/LF would be header injection.
SECRET_PATTERN = r"^[\x21-\x7e]+$"
LABEL_PATTERN = r"^[^\x00-\x1f\x7f]*$"  # no control characters
HETZNER_CHECK_PATH = "/v1/locations"
HETZNER_TOKEN_HELP = (
    "Create a Read & Write API token in the Hetzner Cloud Console (your project → "
    "Security → API tokens) and paste it here."
)


class NewCredential(BaseModel):
    model_config = ConfigDict(extra="forbid")

    kind: CredentialKind
    label: Annotated[
        str,
        StringConstraints(strip_whitespace=True, max_length=MAX_LABEL_CHARS, pattern=LABEL_PATTERN),
    ] = ""
    secret: Annotated[
        str,
        StringConstraints(
            strip_whitespace=True,
            min_length=1,
            max_length=MAX_SECRET_CHARS,
            pattern=SECRET_PATTERN,
        ),
    ]
    # Anthropic only: the user's gateway in front of the model API (None: the default).
    base_url: str | None = None


class CredentialOut(BaseModel):
    id: str
    kind: str
    label: str
    hint: str
    base_url: str | None
    created_at: str

    @classmethod
    def of(cls, credential: Credential) -> "CredentialOut":
        return cls(**credential.__dict__)


class CredentialList(BaseModel):
    credentials: list[CredentialOut]


@router.post(
    "/api/credentials",
    status_code=201,
    response_model=CredentialOut,
    dependencies=[Depends(rate_limited(API_TOKEN))],
)
async def create(
    body: NewCredential,
    user: CurrentUser,
    deployment: DeploymentDep,
) -> CredentialOut:
    if body.kind is not CredentialKind.ANTHROPIC and body.base_url is not None:
        raise InvalidInput(
            "invalid_base_url", f"base_url is for anthropic keys only, not for {body.kind}."
        )
    base_url = checked_base_url(deployment.config, body.base_url)
    if body.kind is CredentialKind.HETZNER:
        await check_hetzner_token(deployment.config, body.secret)
    else:
        await check_agent_key(deployment.config, body.kind, body.secret, base_url)
    credential = await save_credential(
        deployment, user.id, body.kind, body.label, body.secret, base_url
    )
    event(log, "credential.saved", user=user.id, id=credential.id, kind=credential.kind)
    return CredentialOut.of(credential)


@router.get("/api/credentials", response_model=CredentialList)
async def index(user: CurrentUser, deployment: DeploymentDep) -> CredentialList:
    return CredentialList(
        credentials=[CredentialOut.of(c) for c in await list_credentials(deployment, user.id)]
    )


@router.delete("/api/credentials/{credential_id}", status_code=204)
async def delete(
    credential_id: str,
    user: CurrentUser,
    deployment: DeploymentDep,
) -> Response:
    # Someone else's id answers exactly like an unknown one, so ids cannot be probed.
    if not await delete_credential(deployment, user.id, credential_id):
        raise NotFound("credential_not_found", "You have no credential with that id.")
    event(log, "credential.deleted", user=user.id, id=credential_id)
    return Response(status_code=204)


async def check_hetzner_token(config: Config, token: str) -> None:
    """Raise a domain error unless Hetzner Cloud accepts `token` (a read-only call)."""
    await check_credential(
        CredentialCheck(
            url=config.hetzner_api_url + HETZNER_CHECK_PATH,
            headers={"Authorization": f"Bearer {token}"},
            error_prefix="hetzner",
            unreachable=f"Could not reach the Hetzner Cloud API at {config.hetzner_api_url} to "
            "check the token, so it was not saved. Try again in a minute.",
            rejected=lambda status: (
                f"Hetzner Cloud rejected this API token ({status}), so it was not saved. "
                + HETZNER_TOKEN_HELP
            ),
            unavailable=lambda status: (
                f"The Hetzner Cloud API answered {status} while checking the token, so it was "
                "not saved. Try again in a minute."
            ),
        )
    )
