"""Which installations of the GitHub App each user has, and the user token that proves it.

    await save_user_token(deployment, user_id, token)     at sign-in, sealed in D1
    await open_user_token(deployment, user_id)            -> the token, or None
    await record(deployment, user_id, installation)       once GitHub confirmed it is theirs
    await list_installations(deployment, user_id)         -> [Installation]
    await forget(deployment, installation_id)             GitHub says it is gone

The user token is sealed with worker/auth/crypto.py under the user's id, so a ciphertext
moved into another user's row does not open.
"""

from dataclasses import dataclass
from typing import Any

from worker.auth.crypto import Cipher, DecryptionError, Sealed, from_blob, to_blob
from worker.deployment import Deployment

USER_TOKEN_KIND = "github_user_token"
_COLUMNS = "installation_id, account_login, account_type, created_at"


@dataclass(frozen=True)
class Installation:
    id: int
    account: str  # the user or organisation it is installed on
    account_type: str  # "User" or "Organization"
    created_at: str

    @classmethod
    def from_row(cls, row: Any) -> "Installation":
        return cls(
            row["installation_id"], row["account_login"], row["account_type"], row["created_at"]
        )


async def save_user_token(deployment: Deployment, user_id: str, token: str) -> None:
    sealed = await Cipher.from_config(deployment.config).seal(
        user_id, USER_TOKEN_KIND, token.encode()
    )
    await (
        deployment.env.DATABASE.prepare(
            "INSERT INTO github_user_tokens (user_id, nonce, ciphertext) VALUES (?1, ?2, ?3) "
            "ON CONFLICT (user_id) DO UPDATE SET nonce = ?2, ciphertext = ?3, "
            "updated_at = strftime('%Y-%m-%dT%H:%M:%fZ', 'now')"
        )
        .bind(user_id, to_blob(sealed.nonce), to_blob(sealed.ciphertext))
        .run()
    )


async def open_user_token(deployment: Deployment, user_id: str) -> str | None:
    """The user's GitHub token; None when none is kept or it no longer opens."""
    row = (
        await deployment.env.DATABASE.prepare(
            "SELECT nonce, ciphertext FROM github_user_tokens WHERE user_id = ?"
        )
        .bind(user_id)
        .first()
    )
    if row is None:
        return None
    sealed = Sealed(from_blob(row["nonce"]), from_blob(row["ciphertext"]))
    try:
        opened = await Cipher.from_config(deployment.config).open(user_id, USER_TOKEN_KIND, sealed)
    except DecryptionError:
        return None  # sealed under an older key: the next sign-in keeps a fresh one
    return opened.decode()


async def record(
    deployment: Deployment, user_id: str, installation_id: int, account: str, account_type: str
) -> Installation:
    row = (
        await deployment.env.DATABASE.prepare(
            "INSERT INTO github_installations "
            "(user_id, installation_id, account_login, account_type) VALUES (?1, ?2, ?3, ?4) "
            "ON CONFLICT (user_id, installation_id) DO UPDATE "
            "SET account_login = ?3, account_type = ?4 "
            f"RETURNING {_COLUMNS}"
        )
        .bind(user_id, installation_id, account, account_type)
        .first()
    )
    return Installation.from_row(row)


async def list_installations(deployment: Deployment, user_id: str) -> list[Installation]:
    result = (
        await deployment.env.DATABASE.prepare(
            f"SELECT {_COLUMNS} FROM github_installations WHERE user_id = ? "
            "ORDER BY account_login, installation_id"
        )
        .bind(user_id)
        .all()
    )
    return [Installation.from_row(row) for row in result["results"]]


async def forget(deployment: Deployment, installation_id: int) -> None:
    """Drop an installation GitHub no longer knows, for every user that had it."""
    await (
        deployment.env.DATABASE.prepare(
            "DELETE FROM github_installations WHERE installation_id = ?"
        )
        .bind(installation_id)
        .run()
    )
