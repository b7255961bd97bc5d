"""Signed-in callers of the Worker under real Pyodide, made only through its routes: a dev
sign-in (a session in workerd's KV), a personal API token from `/api/tokens`, and nodes
from `POST /api/nodes` whose node token comes from the bootstrap exchange an agent makes.
"""

import base64
import json
import secrets
from dataclasses import dataclass, field
from http.cookies import SimpleCookie
from typing import Any

from tests.pyodide.harness import HttpResponse, PyodideWorker
from tests.pyodide.loopback_nodes import NodeLauncherDouble
from worker.api.ratelimit import LIMITS

# Dev sign-in answers only a loopback peer (the harness's fetch is one) on a `*.localhost`
# host, so the development Worker answers there.
DOMAIN = "sam.localhost"
API = f"https://api.{DOMAIN}"
APP = f"https://app.{DOMAIN}"
SESSION_COOKIE = "sam_session"
# Dev sign-in exists only in development; the rest is what `wrangler secret put` would add.
DEVELOPMENT_VARS = {
    "SAM_DOMAIN": DOMAIN,
    "SAM_ENVIRONMENT": "development",
    "SAM_ENCRYPTION_KEY": base64.urlsafe_b64encode(bytes(range(32))).decode(),
    "SAM_GITHUB_CLIENT_ID": "Iv1.pyodide-harness",
    "SAM_GITHUB_CLIENT_SECRET": "pyodide-harness-secret",
    # Limits are tested on the twin (tests/worker/api/test_ratelimit.py).
    "SAM_RATE_LIMITS": ",".join(f"{name}=100000/60" for name in LIMITS),
}


@dataclass
class Member:
    id: str
    session: str
    api_token: str
    node_tokens: dict[str, str] = field(default_factory=dict)  # node id → its sam:node token

    def session_headers(self) -> dict[str, str]:
        return {"cookie": f"{SESSION_COOKIE}={self.session}", "origin": APP}

    def token_headers(self) -> dict[str, str]:
        return bearer(self.api_token)


def bearer(token: str) -> dict[str, str]:
    return {"authorization": f"Bearer {token}"}


def send_json(
    worker: PyodideWorker,
    method: str,
    url: str,
    payload: dict[str, Any] | None,
    headers: dict[str, str],
) -> HttpResponse:
    body = None if payload is None else json.dumps(payload).encode()
    if body is not None:
        headers = {**headers, "content-type": "application/json"}
    return worker.fetch(url, method=method, headers=headers, body=body)


def sign_in(worker: PyodideWorker, login: str) -> Member:
    """A user signed in with dev sign-in, holding a fresh personal API token."""
    signed_in = send_json(
        worker,
        "POST",
        f"{APP}/api/auth/dev-login",
        {"login": login},
        {"origin": APP},
    )
    assert signed_in.status == 200, signed_in.body
    cookie: SimpleCookie = SimpleCookie()
    cookie.load(signed_in.headers["set-cookie"])
    member = Member(signed_in.json()["id"], cookie[SESSION_COOKIE].value, "")
    member.api_token = new_api_token(worker, member)[1]
    return member


def new_api_token(worker: PyodideWorker, member: Member) -> tuple[str, str]:
    """(id, token) of a fresh personal API token of `member`."""
    made = send_json(
        worker, "POST", f"{APP}/api/tokens", {"name": "harness"}, member.session_headers()
    )
    assert made.status == 201, made.body
    return made.json()["id"], made.json()["token"]


def new_credential(worker: PyodideWorker, member: Member) -> str:
    body = {"kind": "openai", "label": secrets.token_hex(4), "secret": "sk-harness-secret"}
    made = send_json(worker, "POST", f"{APP}/api/credentials", body, member.session_headers())
    assert made.status == 201, made.body
    return made.json()["id"]


def new_node(worker: PyodideWorker, launcher: NodeLauncherDouble, member: Member) -> str:
    """A local node of `member`, its node token got as its agent would: the bootstrap
    token the launcher was handed, exchanged at /api/bootstrap/{token}."""
    made = send_json(
        worker, "POST", f"{APP}/api/nodes", {"provider": "local"}, member.session_headers()
    )
    assert made.status == 201, made.body
    node_id = made.json()["id"]
    token = launcher.bootstrap_tokens[node_id]
    exchanged = worker.fetch(f"{API}/api/bootstrap/{token}", method="POST")
    assert exchanged.status == 200, exchanged.body
    member.node_tokens[node_id] = exchanged.json()["callback_token"]
    return node_id
