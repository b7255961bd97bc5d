"""Users: the `User` every authenticated route receives, and the D1 queries for them.

A user is either a GitHub account (keyed by `github_id`) or, in development only, a local
account made by dev sign-in (no `github_id`, keyed by `login`). The first user ever stored
becomes the admin; that is decided inside the INSERT itself, so two first sign-ins racing
cannot both win.
"""

from dataclasses import dataclass
from typing import Any

from worker.ids import new_id

USER_ID_PREFIX = "u_"

_COLUMNS = "id, login, name, email, avatar_url, is_admin"

# `is_admin` is evaluated in the same statement that inserts, so "no user exists yet" and
# "this row is written" are one atomic step; an update never touches `is_admin`.
_UPSERT_GITHUB = f"""
INSERT INTO users (id, github_id, login, name, email, avatar_url, is_admin)
VALUES (?1, ?2, ?3, ?4, ?5, ?6, NOT EXISTS (SELECT 1 FROM users))
ON CONFLICT (github_id) DO UPDATE SET
    login = excluded.login,
    name = excluded.name,
    email = excluded.email,
    avatar_url = excluded.avatar_url
RETURNING {_COLUMNS}
"""

# Local (dev sign-in) users are unique by login among rows without a github_id
# (migrations/0002_auth.sql: users_local_login). The no-op update makes RETURNING answer
# for an existing row too.
_UPSERT_LOCAL = f"""
INSERT INTO users (id, github_id, login, is_admin)
VALUES (?1, NULL, ?2, NOT EXISTS (SELECT 1 FROM users))
ON CONFLICT (login) WHERE github_id IS NULL DO UPDATE SET login = excluded.login
RETURNING {_COLUMNS}
"""


@dataclass(frozen=True)
class User:
    id: str
    login: str
    name: str | None
    email: str | None
    avatar_url: str | None
    is_admin: bool

    @classmethod
    def from_row(cls, row: Any) -> "User":
        return cls(
            id=row["id"],
            login=row["login"],
            name=row["name"],
            email=row["email"],
            avatar_url=row["avatar_url"],
            is_admin=bool(row["is_admin"]),
        )


@dataclass(frozen=True)
class GitHubProfile:
    """The fields of a GitHub account that SAM keeps."""

    github_id: int
    login: str
    name: str | None
    email: str | None
    avatar_url: str | None


def new_user_id() -> str:
    return new_id(USER_ID_PREFIX)


async def get_user(db: Any, user_id: str) -> User | None:
    row = await db.prepare(f"SELECT {_COLUMNS} FROM users WHERE id = ?").bind(user_id).first()
    return None if row is None else User.from_row(row)


async def upsert_github_user(db: Any, profile: GitHubProfile) -> User:
    """Create or refresh the user for a GitHub account; the first user becomes admin."""
    row = (
        await db.prepare(_UPSERT_GITHUB)
        .bind(
            new_user_id(),
            profile.github_id,
            profile.login,
            profile.name,
            profile.email,
            profile.avatar_url,
        )
        .first()
    )
    assert row is not None, "INSERT ... RETURNING always answers one row"
    return User.from_row(row)


async def upsert_local_user(db: Any, login: str) -> User:
    """Create or get the development-only user `login` (no GitHub account)."""
    row = await db.prepare(_UPSERT_LOCAL).bind(new_user_id(), login).first()
    assert row is not None, "INSERT ... RETURNING always answers one row"
    return User.from_row(row)
