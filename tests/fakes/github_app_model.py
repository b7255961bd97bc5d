"""What the loopback GitHub's App side holds (repositories, installations, the tokens it
issued) and the small helpers of its wire format: GitHub's error bodies, pages, ISO times."""

import json
import subprocess
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from aiohttp import web

ACCESS_LEVELS = {"read": 1, "write": 2, "admin": 3}
DEFAULT_PERMISSIONS = {
    "metadata": "read",
    "contents": "write",
    "pull_requests": "write",
}


@dataclass
class FakeRepository:
    id: int
    owner: str
    name: str
    private: bool = True
    default_branch: str = "main"
    branches: dict[str, str] = field(default_factory=dict)  # name → sha, without git_dir
    git_dir: Path | None = None
    pulls: list[dict[str, Any]] = field(default_factory=list)

    @property
    def full_name(self) -> str:
        return f"{self.owner}/{self.name}"

    def branch_heads(self) -> dict[str, str]:
        if self.git_dir is None:
            return dict(self.branches)
        listed = subprocess.run(
            ["git", "for-each-ref", "--format=%(refname:short) %(objectname)", "refs/heads"],
            cwd=self.git_dir,
            check=True,
            capture_output=True,
            text=True,
        ).stdout
        return dict(line.split(" ", 1) for line in listed.splitlines())


@dataclass
class FakeInstallation:
    id: int
    account: str
    account_type: str
    repositories: list[str]  # names in the account
    permissions: dict[str, str]
    users: set[str]  # logins GitHub lists it for in /user/installations


@dataclass(frozen=True)
class TokenGrant:
    installation_id: int
    repositories: tuple[str, ...]  # full names the token reaches
    permissions: dict[str, str]
    expires_at: float


def iso_time(seconds: float) -> str:
    return datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def github_error(status: int, message: str) -> web.HTTPException:
    kinds = {401: web.HTTPUnauthorized, 403: web.HTTPForbidden, 404: web.HTTPNotFound}
    kind = kinds.get(status, web.HTTPUnprocessableEntity)
    body = {"message": message, "documentation_url": "https://docs.github.com/rest"}
    return kind(text=json.dumps(body), content_type="application/json")


_FAULTS: dict[int, type[web.HTTPException]] = {
    403: web.HTTPForbidden,
    429: web.HTTPTooManyRequests,
    500: web.HTTPInternalServerError,
    502: web.HTTPBadGateway,
    503: web.HTTPServiceUnavailable,
}


def github_fault(status: int, body: dict[str, str], headers: dict[str, str]) -> web.HTTPException:
    return _FAULTS[status](text=json.dumps(body), content_type="application/json", headers=headers)


def allows(granted: dict[str, str], name: str, level: str) -> bool:
    return ACCESS_LEVELS.get(granted.get(name, ""), 0) >= ACCESS_LEVELS[level]


def page_of(request: web.Request, items: list[Any]) -> list[Any]:
    per_page = min(int(request.query.get("per_page", "30")), 100)
    page = max(int(request.query.get("page", "1")), 1)
    return items[(page - 1) * per_page : page * per_page]
