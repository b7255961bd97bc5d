"""Users' stored secrets (a Hetzner token, agent API keys), sealed at rest.

Each value is sealed with worker/auth/crypto.py under its owner's user id and its kind, so a
ciphertext copied into another user's row (or relabelled as another kind) does not open.
Only a masked hint (`…a1b2`) is ever shown; the plaintext leaves this module only through
`open_credential`, for server-side code that needs it (provisioning).
"""

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from worker.auth.crypto import Cipher, DecryptionError, Sealed, from_blob, to_blob
from worker.db import owned_rows
from worker.deployment import Deployment
from worker.errors import Conflict, InvalidInput
from worker.ids import new_id

CREDENTIAL_ID_PREFIX = "cr_"
# Only secrets this long show their last characters; a short one would give too much away.
HINT_MIN_SECRET_CHARS = 16
HINT_VISIBLE_CHARS = 4
HINT_MASK = "…"

_COLUMNS = "id, kind, label, hint, base_url, created_at"


class CredentialKind(StrEnum):
    HETZNER = "hetzner"
    ANTHROPIC = "anthropic"
    OPENAI = "openai"


@dataclass(frozen=True)
class Credential:
    id: str
    kind: str
    label: str
    hint: str
    base_url: str | None  # an agent key's upstream, when not the deployment's default
    created_at: str

    @classmethod
    def from_row(cls, row: Any) -> "Credential":
        return cls(
            row["id"], row["kind"], row["label"], row["hint"], row["base_url"], row["created_at"]
        )


@dataclass(frozen=True)
class OpenedCredential:
    secret: str = field(repr=False)
    base_url: str | None


class CredentialMissing(InvalidInput):
    def __init__(self, kind: CredentialKind) -> None:
        super().__init__(
            "credential_missing",
            f"No {kind} credential is stored for you. Add one in Settings → Credentials "
            "(POST /api/credentials) and try again.",
        )


class CredentialUnreadable(InvalidInput):
    def __init__(self, kind: str, credential_id: str, label: str) -> None:
        named = (
            f"{kind} credential {label!r} ({credential_id})"
            if label
            else (f"{kind} credential {credential_id}")
        )
        super().__init__(
            "credential_unreadable",
            f"Your {named} can no longer be read: it was sealed under another encryption key "
            "or changed since. Delete it and enter it again in Settings → Credentials.",
        )


def _purpose(kind: CredentialKind, base_url: str | None) -> str:
    """What the seal binds besides the owner: the kind, and the upstream the key may be
    sent to, so that a base URL changed in the database cannot redirect the key."""
    return str(kind) if base_url is None else f"{kind} {base_url}"


def hint_for(secret: str) -> str:
    if len(secret) < HINT_MIN_SECRET_CHARS:
        return HINT_MASK
    return HINT_MASK + secret[-HINT_VISIBLE_CHARS:]


async def save_credential(
    deployment: Deployment,
    user_id: str,
    kind: CredentialKind,
    label: str,
    secret: str,
    base_url: str | None = None,
) -> Credential:
    """Seal and store `secret`; raises a Conflict when `label` is taken for `kind`."""
    cipher = Cipher.from_config(deployment.config)
    sealed = await cipher.seal(user_id, _purpose(kind, base_url), secret.encode())
    row = (
        await deployment.env.DATABASE.prepare(
            "INSERT INTO credentials "
            "(id, user_id, kind, label, hint, nonce, ciphertext, base_url) "
            "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8) "
            "ON CONFLICT (user_id, kind, label) DO NOTHING "
            f"RETURNING {_COLUMNS}"
        )
        .bind(
            new_id(CREDENTIAL_ID_PREFIX),
            user_id,
            str(kind),
            label,
            hint_for(secret),
            to_blob(sealed.nonce),
            to_blob(sealed.ciphertext),
            base_url,
        )
        .first()
    )
    if row is None:
        named = f"labelled {label!r}" if label else "without a label"
        raise Conflict(
            "credential_exists",
            f"You already have a {kind} credential {named}. Delete it first, or save "
            "this one under another label.",
        )
    return Credential.from_row(row)


async def list_credentials(deployment: Deployment, user_id: str) -> list[Credential]:
    return await owned_rows(deployment, "credentials", _COLUMNS, user_id, Credential.from_row)


async def delete_credential(deployment: Deployment, user_id: str, credential_id: str) -> bool:
    """False when no credential of this user has that id (someone else's included)."""
    statement = "DELETE FROM credentials WHERE id = ? AND user_id = ?"
    result = await deployment.env.DATABASE.prepare(statement).bind(credential_id, user_id).run()
    return result["meta"]["changes"] > 0


async def open_credential(
    deployment: Deployment, user_id: str, kind: CredentialKind, label: str | None = None
) -> str:
    """The plaintext of the user's newest `kind` credential (or the one with `label`).

    For server-side use only (provisioning); never put the result in a response, a log
    line or a VM's user_data. Raises CredentialMissing when there is none, and
    CredentialUnreadable when it no longer opens (the user must enter it again).
    """
    return (await open_credential_with_base(deployment, user_id, kind, label)).secret


async def open_credential_with_base(
    deployment: Deployment, user_id: str, kind: CredentialKind, label: str | None = None
) -> OpenedCredential:
    """`open_credential`, with the base URL stored beside the secret."""
    query = (
        "SELECT id, label, base_url, nonce, ciphertext FROM credentials "
        "WHERE user_id = ? AND kind = ?"
    )
    bindings: list[Any] = [user_id, str(kind)]
    if label is not None:
        query += " AND label = ?"
        bindings.append(label)
    row = (
        await deployment.env.DATABASE.prepare(query + " ORDER BY created_at DESC, id DESC LIMIT 1")
        .bind(*bindings)
        .first()
    )
    if row is None:
        raise CredentialMissing(kind)
    sealed = Sealed(from_blob(row["nonce"]), from_blob(row["ciphertext"]))
    cipher = Cipher.from_config(deployment.config)
    try:
        secret = (await cipher.open(user_id, _purpose(kind, row["base_url"]), sealed)).decode()
    except DecryptionError:
        raise CredentialUnreadable(str(kind), row["id"], row["label"]) from None
    return OpenedCredential(secret, row["base_url"])
