"""The GitHub App side of the loopback GitHub (tests/fakes/github.py mixes it in).

What SAM calls, in GitHub's wire format (docs.github.com/rest/apps):

- App JWT auth (`Authorization: Bearer <RS256 JWT>`): the signature is checked with the
  public half of `app_key`, `iss` must be the App ID, `iat`/`exp` must hold by `clock`, and
  `exp` may be at most 10 minutes ahead, as GitHub demands. `GET /app`,
  `GET /app/installations`, `GET /repos/{o}/{r}/installation`.
- `POST /app/installations/{id}/access_tokens` with optional `repositories` (names) and
  `permissions`: 422 when either asks for more than the installation has; every token is
  recorded (`tokens`) with its restriction, so the git server can enforce it
  (`git_access`).
- `GET /apps/{slug}/installations/new?state=`: the install page, left at once for the App's
  `setup_url` with `installs_next` as GitHub's redirect carries it.
- `GET /user/installations` (the user's OAuth token): the installations that user may
  access.
- With an installation token: `GET /installation/repositories`, `GET /repos/{o}/{r}`,
  `GET /repos/{o}/{r}/branches`, `GET|POST /repos/{o}/{r}/pulls` (pull_requests), each
  refused (404, as GitHub hides what a token cannot see; 403 for a missing permission)
  outside the token's repositories and permissions.

Lists page with `per_page` and `page`. A repository may be backed by a bare git directory
(`git_dir`), whose branches are then read with real git.
"""

import secrets
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import jwt
from aiohttp import web
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from tests.fakes.github_app_model import (
    DEFAULT_PERMISSIONS,
    FakeInstallation,
    FakeRepository,
    TokenGrant,
    allows,
    github_error,
    github_fault,
    iso_time,
    page_of,
)

APP_ID = 424242
APP_SLUG = "sam-test-app"
TOKEN_LIFETIME_SECONDS = 3600
MAX_JWT_AHEAD_SECONDS = 600


class GitHubAppSide:
    """State and routes of the App; FakeGitHub calls `_init_app` and `app_routes`."""

    port: int
    url: str

    def _init_app(self) -> None:
        self.app_id = APP_ID
        self.app_slug = APP_SLUG
        self.app_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self.clock: Callable[[], float] = time.time
        self.installations: dict[int, FakeInstallation] = {}
        self.repositories: dict[str, FakeRepository] = {}  # full name → repository
        self.tokens: dict[str, TokenGrant] = {}
        self.token_requests: list[dict[str, Any]] = []  # what each mint asked for
        self.refused_jwts: list[str] = []  # why each refused app JWT was refused
        # GitHub failing: every App call answers this (status, headers) while it is set.
        self.app_fault: tuple[int, dict[str, str]] | None = None
        # False: the sign-in client is a plain OAuth app, whose tokens may not list
        # installations (GitHub's 403).
        self.client_is_app = True
        self._next_app_id = 5000
        # The App's setup URL (its settings on GitHub) and the installation the next visit to
        # the install page ends with: GitHub then sends the browser there with it.
        self.setup_url: str | None = None
        self.installs_next: int | None = None

    def app_vars(self) -> dict[str, str]:
        """The deployment settings of this App, its private key included."""
        return {**self.app_public_vars(), **self.app_secrets()}

    def app_public_vars(self) -> dict[str, str]:
        return {
            "SAM_GITHUB_APP_ID": str(self.app_id),
            "SAM_GITHUB_APP_SLUG": self.app_slug,
            "SAM_GITHUB_BASE_URL": self.url,
            "SAM_GITHUB_API_URL": self.url,
        }

    def app_secrets(self) -> dict[str, str]:
        """The App's private key, as GitHub hands it out (PKCS #1 PEM)."""
        pem = self.app_key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.TraditionalOpenSSL,
            serialization.NoEncryption(),
        ).decode()
        return {"SAM_GITHUB_APP_PRIVATE_KEY": pem}

    def _new_id(self) -> int:
        self._next_app_id += 1
        return self._next_app_id

    def add_repository(
        self, owner: str, name: str, *, git_dir: Path | None = None, **fields: Any
    ) -> FakeRepository:
        repository = FakeRepository(self._new_id(), owner, name, git_dir=git_dir, **fields)
        self.repositories[repository.full_name] = repository
        return repository

    def install(
        self,
        account: str,
        repositories: list[str],
        *,
        users: set[str],
        account_type: str = "User",
        permissions: dict[str, str] | None = None,
    ) -> FakeInstallation:
        """The App installed on `account`, reaching `repositories` (names), visible to `users`."""
        installation = FakeInstallation(
            self._new_id(),
            account,
            account_type,
            list(repositories),
            dict(permissions or DEFAULT_PERMISSIONS),
            set(users),
        )
        self.installations[installation.id] = installation
        return installation

    def git_access(self, token: str | None, full_name: str, write: bool) -> int:
        """What GitHub's git endpoint answers a token for a fetch (or push): 200, 401, 403
        (a read token pushing) or 404 (a repository the token does not reach)."""
        grant = self.tokens.get(token or "")
        if grant is None or grant.expires_at <= self.clock():
            return 401
        if full_name not in grant.repositories:
            return 404
        if not allows(grant.permissions, "contents", "write" if write else "read"):
            return 403 if write else 404
        return 200

    def app_routes(self, app: web.Application) -> None:
        app.router.add_get("/apps/{slug}/installations/new", self._install_page)
        app.router.add_get("/app", self._app)
        app.router.add_get("/app/installations", self._app_installations)
        app.router.add_post("/app/installations/{id}/access_tokens", self._access_tokens)
        app.router.add_get("/repos/{owner}/{repo}/installation", self._repo_installation)
        app.router.add_get("/user/installations", self._user_installations)
        app.router.add_get("/installation/repositories", self._installation_repositories)
        app.router.add_get("/repos/{owner}/{repo}", self._repository)
        app.router.add_get("/repos/{owner}/{repo}/branches", self._branches)
        app.router.add_get("/repos/{owner}/{repo}/pulls", self._list_pulls)
        app.router.add_post("/repos/{owner}/{repo}/pulls", self._create_pull)

    # --- shapes ------------------------------------------------------------------------

    def _installation_json(self, installation: FakeInstallation) -> dict[str, Any]:
        return {
            "id": installation.id,
            "account": {"login": installation.account, "type": installation.account_type},
            "app_id": self.app_id,
            "app_slug": self.app_slug,
            "target_type": installation.account_type,
            "repository_selection": "selected",
            "permissions": installation.permissions,
        }

    def _repository_json(self, repository: FakeRepository) -> dict[str, Any]:
        return {
            "id": repository.id,
            "name": repository.name,
            "full_name": repository.full_name,
            "owner": {"login": repository.owner},
            "private": repository.private,
            "default_branch": repository.default_branch,
            "clone_url": f"{self.url}/{repository.full_name}.git",
        }

    # --- credentials -------------------------------------------------------------------

    def _fail_if_faulty(self) -> None:
        if self.app_fault is not None:
            status, headers = self.app_fault
            body = {"message": "API rate limit exceeded" if status in (403, 429) else "Oops"}
            raise github_fault(status, body, headers)

    def _app_jwt(self, request: web.Request) -> None:
        self._fail_if_faulty()
        scheme, _, token = request.headers.get("authorization", "").partition(" ")
        if scheme.lower() != "bearer" or token.count(".") != 2:
            raise github_error(401, "A JSON web token could not be decoded")
        try:
            claims = jwt.decode(
                token,
                self.app_key.public_key(),
                algorithms=["RS256"],
                options={
                    "require": ["iat", "exp", "iss"],
                    "verify_iat": False,
                    "verify_exp": False,
                },
            )
        except jwt.PyJWTError as exc:
            self.refused_jwts.append(str(exc))
            raise github_error(401, "A JSON web token could not be decoded") from None
        now = self.clock()
        reason = None
        if str(claims["iss"]) != str(self.app_id):
            reason = "'Issuer' claim ('iss') must be an Integer"
        elif not isinstance(claims["iat"], int) or claims["iat"] > now + 60:
            reason = "'Issued at' claim ('iat') must be an Integer representing a time in the past"
        elif claims["exp"] <= now:
            reason = "'Expiration time' claim ('exp') must be a time in the future"
        elif claims["exp"] > now + MAX_JWT_AHEAD_SECONDS:
            reason = "'Expiration time' claim ('exp') is too far in the future"
        if reason is not None:
            self.refused_jwts.append(reason)
            raise github_error(401, reason)

    def _installation_grant(self, request: web.Request) -> TokenGrant:
        self._fail_if_faulty()
        scheme, _, token = request.headers.get("authorization", "").partition(" ")
        grant = self.tokens.get(token) if scheme.lower() in ("bearer", "token") else None
        if grant is None or grant.expires_at <= self.clock():
            raise github_error(401, "Bad credentials")
        return grant

    def _reached(self, request: web.Request, permission: str, level: str) -> FakeRepository:
        grant = self._installation_grant(request)
        full_name = f"{request.match_info['owner']}/{request.match_info['repo']}"
        repository = self.repositories.get(full_name)
        if repository is None or full_name not in grant.repositories:
            raise github_error(404, "Not Found")
        if not allows(grant.permissions, permission, level):
            raise github_error(403, "Resource not accessible by integration")
        return repository

    # --- App JWT routes ----------------------------------------------------------------

    async def _install_page(self, request: web.Request) -> web.Response:
        """The user installs the App on GitHub's page (`installs_next`); GitHub redirects to
        the App's setup URL with the installation and the `state` it was given."""
        if request.match_info["slug"] != self.app_slug or self.setup_url is None:
            raise github_error(404, "Not Found")
        if self.installs_next is None:
            raise github_error(400, "This fake's test set no installs_next for the install page.")
        query = {"installation_id": str(self.installs_next), "setup_action": "install"}
        if "state" in request.query:
            query["state"] = request.query["state"]
        raise web.HTTPFound(f"{self.setup_url}?{urlencode(query)}")

    async def _app(self, request: web.Request) -> web.Response:
        self._app_jwt(request)
        return web.json_response({"id": self.app_id, "slug": self.app_slug, "name": "SAM test"})

    async def _app_installations(self, request: web.Request) -> web.Response:
        self._app_jwt(request)
        listed = [self._installation_json(each) for each in self.installations.values()]
        return web.json_response(page_of(request, listed))

    async def _repo_installation(self, request: web.Request) -> web.Response:
        self._app_jwt(request)
        owner, name = request.match_info["owner"], request.match_info["repo"]
        for installation in self.installations.values():
            if installation.account == owner and name in installation.repositories:
                return web.json_response(self._installation_json(installation))
        raise github_error(404, "Not Found")

    async def _access_tokens(self, request: web.Request) -> web.Response:
        self._app_jwt(request)
        installation = self.installations.get(int(request.match_info["id"]))
        if installation is None:
            raise github_error(404, "Not Found")
        body = await request.json() if request.can_read_body else {}
        self.token_requests.append({"installation_id": installation.id, **body})
        names = body.get("repositories")
        if names is not None and not set(names) <= set(installation.repositories):
            raise github_error(
                422,
                "There is at least one repository that does not exist or is not accessible "
                "to the parent installation.",
            )
        permissions = body.get("permissions") or dict(installation.permissions)
        if not all(allows(installation.permissions, k, v) for k, v in permissions.items()):
            raise github_error(
                422, "The permissions requested are not granted to this installation."
            )
        reached = names if names is not None else installation.repositories
        token = "ghs_" + secrets.token_hex(18)
        expires_at = self.clock() + TOKEN_LIFETIME_SECONDS
        self.tokens[token] = TokenGrant(
            installation.id,
            tuple(f"{installation.account}/{name}" for name in reached),
            dict(permissions),
            expires_at,
        )
        answer: dict[str, Any] = {
            "token": token,
            "expires_at": iso_time(expires_at),
            "permissions": permissions,
            "repository_selection": "selected",
        }
        if names is not None:
            answer["repositories"] = [
                self._repository_json(self.repositories[f"{installation.account}/{name}"])
                for name in names
                if f"{installation.account}/{name}" in self.repositories
            ]
        return web.json_response(answer, status=201)

    # --- the user's token ----------------------------------------------------------------

    async def _user_installations(self, request: web.Request) -> web.Response:
        account, _ = self._caller(request)  # type: ignore[attr-defined]  # FakeGitHub's
        self._fail_if_faulty()
        if not self.client_is_app:
            raise github_error(
                403,
                "You must authenticate with an access token authorized to a GitHub App "
                "in order to list installations",
            )
        mine = [
            self._installation_json(each)
            for each in self.installations.values()
            if account.login in each.users
        ]
        return web.json_response(
            {"total_count": len(mine), "installations": page_of(request, mine)}
        )

    # --- installation tokens -------------------------------------------------------------

    async def _installation_repositories(self, request: web.Request) -> web.Response:
        grant = self._installation_grant(request)
        reached = [
            self._repository_json(self.repositories[name])
            for name in grant.repositories
            if name in self.repositories
        ]
        return web.json_response(
            {"total_count": len(reached), "repositories": page_of(request, reached)}
        )

    async def _repository(self, request: web.Request) -> web.Response:
        return web.json_response(self._repository_json(self._reached(request, "metadata", "read")))

    async def _branches(self, request: web.Request) -> web.Response:
        repository = self._reached(request, "metadata", "read")
        heads = sorted(repository.branch_heads().items())
        listed = [{"name": name, "commit": {"sha": sha}, "protected": False} for name, sha in heads]
        return web.json_response(page_of(request, listed))

    async def _list_pulls(self, request: web.Request) -> web.Response:
        repository = self._reached(request, "pull_requests", "read")
        state, head = request.query.get("state", "open"), request.query.get("head")
        listed = [
            pull
            for pull in repository.pulls
            if (state == "all" or pull["state"] == state)
            and (head is None or pull["head"]["label"] == head)
        ]
        return web.json_response(page_of(request, listed))

    async def _create_pull(self, request: web.Request) -> web.Response:
        repository = self._reached(request, "pull_requests", "write")
        body = await request.json()
        head, base = str(body.get("head", "")), str(body.get("base", ""))
        branch = head.split(":", 1)[-1]
        heads = repository.branch_heads()
        if branch not in heads or base not in heads:
            raise github_error(422, "Validation Failed: head or base does not exist")
        label = f"{repository.owner}:{branch}"
        if any(p["head"]["label"] == label and p["state"] == "open" for p in repository.pulls):
            raise github_error(
                422, f"Validation Failed: A pull request already exists for {label}."
            )
        number = len(repository.pulls) + 1
        pull = {
            "number": number,
            "state": "open",
            "title": body.get("title", ""),
            "body": body.get("body"),
            "html_url": f"{self.url}/{repository.full_name}/pull/{number}",
            "head": {"ref": branch, "label": label, "sha": heads[branch]},
            "base": {"ref": base, "label": f"{repository.owner}:{base}"},
        }
        repository.pulls.append(pull)
        return web.json_response(pull, status=201)
