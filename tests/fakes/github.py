"""A loopback GitHub: the OAuth web flow (with PKCE) and the REST calls sign-in makes.

It runs an aiohttp server on 127.0.0.1 in a thread of its own, so sync tests and the
edge process can both reach it, and answers as github.com and api.github.com do:

- `GET /login/oauth/authorize`: auto-approves as the account named by `login=` (a real
  GitHub parameter) or `default_login`, and redirects to `redirect_uri?code&state`;
  records the S256 `code_challenge`.
- `POST /login/oauth/access_token` (form; JSON with `Accept: application/json`, else
  form-encoded): checks client id and secret, the code (single use, 10 min), the
  redirect_uri and the PKCE `code_verifier`; errors are 200s with `error` and
  `error_description`, as GitHub's are.
- `GET /user`, `GET /user/emails` with `Authorization: Bearer|token <access token>`;
  like GitHub, a request without User-Agent is refused (403).
- The GitHub App's side (app JWT, installations, installation tokens, repositories,
  branches, pulls): tests/fakes/github_app.py, mixed in.
"""

import base64
import hashlib
import secrets
import threading
import time
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode

from aiohttp import web

from tests.fakes.github_app import GitHubAppSide
from tests.fakes.loopback import LoopbackServer

CLIENT_ID = "Iv1.sam-test-client"
CLIENT_SECRET = "sam-test-client-secret"
CODE_TTL_SECONDS = 600
ERROR_URI = "https://docs.github.com/apps/managing-oauth-apps/troubleshooting-oauth-app-access-token-request-errors"


@dataclass
class Account:
    id: int
    login: str
    name: str | None = None
    # The public profile email; None when the user keeps it private.
    email: str | None = None
    # What /user/emails lists (the private addresses too).
    emails: list[dict[str, Any]] = field(default_factory=list)
    # Organisation login → membership state ("active", or "pending" for an invitation).
    orgs: dict[str, str] = field(default_factory=dict)
    # Where GitHub says the avatar is; None: on this loopback server. A browser test sets
    # GitHub's own avatar host, the one the app's Content-Security-Policy admits.
    avatar_url: str | None = None

    def profile(self, port: int) -> dict[str, Any]:
        return {
            "login": self.login,
            "id": self.id,
            "node_id": f"U_{self.id}",
            "avatar_url": self.avatar_url or f"http://127.0.0.1:{port}/avatars/{self.id}",
            "type": "User",
            "site_admin": False,
            "name": self.name,
            "email": self.email,
        }


@dataclass
class _Grant:
    client_id: str
    redirect_uri: str | None
    challenge: str | None
    method: str | None
    login: str
    scope: str
    expires: float


def _s256(verifier: str) -> str:
    return (
        base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
    )


class FakeGitHub(GitHubAppSide, LoopbackServer):
    name = "github"

    def __init__(self, client_id: str = CLIENT_ID, client_secret: str = CLIENT_SECRET) -> None:
        super().__init__()
        self.client_id = client_id
        self.client_secret = client_secret
        self.accounts: dict[str, Account] = {}
        self.default_login: str | None = None
        # The status /user answers with (to play GitHub being down).
        self.user_status = 200
        # Every token request, minus the client secret: what the caller sent.
        self.exchanges: list[dict[str, str]] = []
        self._grants: dict[str, _Grant] = {}
        self._tokens: dict[str, tuple[str, str]] = {}  # access token → (login, scope)
        self._lock = threading.Lock()
        self._next_id = 1000
        self._init_app()

    def vars(self, users: str = "", orgs: str = "") -> dict[str, str]:
        """The deployment settings that point GitHub sign-in here, admitting `users` and
        members of `orgs` (comma-separated logins)."""
        return {
            "SAM_GITHUB_CLIENT_ID": self.client_id,
            "SAM_GITHUB_CLIENT_SECRET": self.client_secret,
            "SAM_GITHUB_BASE_URL": self.url,
            "SAM_GITHUB_API_URL": self.url,
            "SAM_ALLOWED_GITHUB_USERS": users,
            "SAM_ALLOWED_GITHUB_ORGS": orgs,
        }

    # --- accounts -----------------------------------------------------------------------

    def add_account(
        self,
        login: str,
        name: str | None = None,
        email: str | None = None,
        private_email: str | None = None,
    ) -> Account:
        """A GitHub account; `private_email` is listed by /user/emails only."""
        with self._lock:
            self._next_id += 1
            primary = email or private_email
            emails = (
                [{"email": primary, "primary": True, "verified": True, "visibility": None}]
                if primary
                else []
            )
            account = Account(self._next_id, login, name, email, emails)
            self.accounts[login] = account
            return account

    def user_tokens(self, login: str) -> list[str]:
        """The OAuth tokens issued to `login`."""
        with self._lock:
            return [token for token, (owner, _) in self._tokens.items() if owner == login]

    def revoke_user_tokens(self, login: str) -> None:
        """The user revokes the app's authorization: their tokens stop working."""
        with self._lock:
            for token in [t for t, (owner, _) in self._tokens.items() if owner == login]:
                del self._tokens[token]

    # --- lifecycle ----------------------------------------------------------------------

    def routes(self, app: web.Application) -> None:
        app.router.add_get("/login/oauth/authorize", self._authorize)
        app.router.add_post("/login/oauth/access_token", self._access_token)
        app.router.add_get("/user", self._user)
        app.router.add_get("/user/emails", self._emails)
        app.router.add_get("/user/memberships/orgs/{org}", self._membership)
        self.app_routes(app)

    # --- OAuth --------------------------------------------------------------------------

    async def _authorize(self, request: web.Request) -> web.Response:
        query = request.query
        if query.get("client_id") != self.client_id:
            return web.Response(status=404, text="Not Found")
        method = query.get("code_challenge_method")
        if "code_challenge" in query and method not in ("S256", None):
            return web.Response(status=400, text="Only S256 code challenges are supported.")
        login = query.get("login") or self.default_login
        if login not in self.accounts:
            return web.Response(status=400, text=f"No such account {login!r}.")
        redirect_uri = query.get("redirect_uri")
        if not redirect_uri:
            return web.Response(status=400, text="This fake needs an explicit redirect_uri.")
        code = secrets.token_hex(10)
        with self._lock:
            self._grants[code] = _Grant(
                client_id=self.client_id,
                redirect_uri=redirect_uri,
                challenge=query.get("code_challenge"),
                method=method,
                login=login,
                scope=query.get("scope", ""),
                expires=time.time() + CODE_TTL_SECONDS,
            )
        params = {"code": code}
        if "state" in query:
            params["state"] = query["state"]
        raise web.HTTPFound(f"{redirect_uri}?{urlencode(params)}")

    async def _access_token(self, request: web.Request) -> web.Response:
        form = await request.post()
        sent = {name: str(value) for name, value in form.items()}
        with self._lock:
            self.exchanges.append({k: v for k, v in sent.items() if k != "client_secret"})
        wants_json = "application/json" in request.headers.get("accept", "")
        if sent.get("client_id") != self.client_id or not secrets.compare_digest(
            sent.get("client_secret", ""), self.client_secret
        ):
            return self._oauth_error(
                wants_json,
                "incorrect_client_credentials",
                "The client_id and/or client_secret passed are incorrect.",
            )
        with self._lock:
            # Single use: a code is spent by the first exchange that names it.
            grant = self._grants.pop(sent.get("code", ""), None)
        if grant is None or grant.expires < time.time():
            return self._oauth_error(
                wants_json, "bad_verification_code", "The code passed is incorrect or expired."
            )
        if "redirect_uri" in sent and sent["redirect_uri"] != grant.redirect_uri:
            return self._oauth_error(
                wants_json,
                "redirect_uri_mismatch",
                "The redirect_uri MUST match the registered callback URL for this application.",
            )
        if grant.challenge is not None:
            verifier = sent.get("code_verifier")
            if not verifier or not secrets.compare_digest(_s256(verifier), grant.challenge):
                return self._oauth_error(
                    wants_json,
                    "bad_verification_code",
                    "The code_verifier does not match the code_challenge.",
                )
        token = "gho_" + secrets.token_hex(18)
        with self._lock:
            self._tokens[token] = (grant.login, grant.scope)
        body = {
            "access_token": token,
            "token_type": "bearer",
            "scope": grant.scope.replace(" ", ","),
        }
        if wants_json:
            return web.json_response(body)
        return web.Response(text=urlencode(body), content_type="application/x-www-form-urlencoded")

    @staticmethod
    def _oauth_error(wants_json: bool, error: str, description: str) -> web.Response:
        body = {"error": error, "error_description": description, "error_uri": ERROR_URI}
        if wants_json:
            return web.json_response(body)
        return web.Response(text=urlencode(body), content_type="application/x-www-form-urlencoded")

    # --- REST ---------------------------------------------------------------------------

    def _caller(self, request: web.Request) -> tuple[Account, str]:
        if not request.headers.get("user-agent"):
            raise web.HTTPForbidden(
                text="Request forbidden by administrative rules. "
                "Please make sure your request has a User-Agent header."
            )
        scheme, _, token = request.headers.get("authorization", "").partition(" ")
        with self._lock:
            found = self._tokens.get(token) if scheme.lower() in ("bearer", "token") else None
        if found is None:
            raise web.HTTPUnauthorized(
                text='{"message":"Bad credentials","status":"401"}', content_type="application/json"
            )
        login, scope = found
        return self.accounts[login], scope

    async def _user(self, request: web.Request) -> web.Response:
        account, _ = self._caller(request)
        if self.user_status != 200:
            return web.json_response({"message": "Server Error"}, status=self.user_status)
        return web.json_response(account.profile(self.port))

    async def _emails(self, request: web.Request) -> web.Response:
        account, scope = self._caller(request)
        if "user:email" not in scope.split() and "user" not in scope.split():
            return web.json_response({"message": "Not Found", "status": "404"}, status=404)
        return web.json_response(account.emails)

    async def _membership(self, request: web.Request) -> web.Response:
        """GET /user/memberships/orgs/{org}: needs read:org; 404 when not a member."""
        account, scope = self._caller(request)
        org = request.match_info["org"]
        if "read:org" not in scope.split() and "admin:org" not in scope.split():
            return web.json_response(
                {"message": "You need at least read:org scope to view memberships."}, status=403
            )
        state = {name.lower(): value for name, value in account.orgs.items()}.get(org.lower())
        if state is None:
            return web.json_response({"message": "Not Found", "status": "404"}, status=404)
        return web.json_response(
            {
                "state": state,
                "role": "member",
                "organization": {"login": org},
                "user": {"login": account.login, "id": account.id},
            }
        )
