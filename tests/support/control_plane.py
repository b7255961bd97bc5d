"""A loopback control plane for agent tests: the real wire format, nothing else.

It runs an aiohttp server on 127.0.0.1 in a thread of its own (so sync tests, async tests
and agent subprocesses can all reach it) and:

- serves a JWKS of ES256 public keys with `kid` at /.well-known/jwks.json, counts fetches,
  and can rotate keys (`rotate()`) or answer the JWKS with an error (`jwks_status`);
- mints tokens as the control plane will (`agent_token`, `terminal_token`, `mint`) and
  deliberately bad ones (`bad_tokens`) with the status the agent must answer;
- records every callback (boot-log, ready, provisioning-failed, heartbeat) with its body
  and Authorization header; callbacks need a callback token it issued (else 401), for its
  own node (a node callback naming another: 403 token_scope), to a route the real control
  plane has (else 404), and a body the real control plane would parse: each is validated
  against its model in wire/callbacks.py (else 400, as the real routes answer);
- replies to a heartbeat with a `Beat`, carrying a new callback token when one is queued
  (`queue_callback_token`), and can fail the next N calls to a path (`fail_next`);
- answers `GET /api/workspaces/{id}/agent-credential` with `agent_credential` (a stand-in
  key by default; None: 409 agent_credential_missing, as the real route answers);
- answers `POST /api/workspaces/{id}/git-token` with `git_tokens[id]` (a wire.git.GitToken a
  test puts there; none: 409 repository_not_on_github, as the real route answers);
- ingests `POST /api/workspaces/{id}/chat-messages` (a wire.chat.MessageBatch, at most
  MAX_BATCH_BYTES) into the chats `link_chat` linked to that workspace (another chat: 403
  chat_not_linked), each message id once, in `chat_messages`; `ingest_delay_seconds` makes
  it slow and `unavailable` (kinds) makes it answer 503 until cleared.
"""

import asyncio
import base64
import hashlib
import hmac
import json
import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import jwt
from aiohttp import web
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from jwt.algorithms import ECAlgorithm
from pydantic import ValidationError

from tests.fakes.loopback import LoopbackServer
from wire.agent_api import BootLogEntry
from wire.callbacks import (
    AGENT_CREDENTIAL_MISSING,
    AgentCredential,
    Beat,
    Heartbeat,
    NodeReady,
    ProvisioningFailed,
    WorkspaceReady,
)
from wire.chat import MAX_BATCH_BYTES, IngestResult, MessageBatch
from wire.git import GitToken
from wire.states import LifecycleState, NodeHealth

AGENT_AUDIENCE = "sam:agent"
TERMINAL_AUDIENCE = "sam:terminal"
TOKEN_TTL_SECONDS = 300
# Past the agent's 30 s leeway, so "expired" is expired.
EXPIRED_AGO_SECONDS = 600
WAIT_TIMEOUT_SECONDS = 15.0
WAIT_POLL_SECONDS = 0.02
INITIAL_CALLBACK_TOKEN = "callback-token-0"
CALLBACK_KINDS = (
    "boot-log",
    "ready",
    "provisioning-failed",
    "heartbeat",
    "agent-credential",
    "chat-messages",
    "git-token",
)
# What the double hands out as every workspace owner's model key unless a test says other.
DOUBLE_MODEL_KEY = "sk-ant-api03-control-plane-double-model-key"


@dataclass
class SigningKey:
    kid: str
    private_key: ec.EllipticCurvePrivateKey

    def public_jwk(self) -> dict[str, Any]:
        jwk = ECAlgorithm.to_jwk(self.private_key.public_key(), as_dict=True)
        return {**jwk, "kid": self.kid, "alg": "ES256", "use": "sig"}

    def public_pem(self) -> bytes:
        return self.private_key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )


def new_signing_key(kid: str | None = None) -> SigningKey:
    return SigningKey(kid or f"key-{secrets.token_hex(4)}", ec.generate_private_key(ec.SECP256R1()))


@dataclass(frozen=True)
class BadToken:
    token: str
    status: int  # what the agent must answer: 401 invalid, 403 valid but not for this


@dataclass
class Callback:
    method: str
    path: str
    kind: str  # one of CALLBACK_KINDS, or "other"
    target: str  # the workspace or node id in the path
    body: Any
    authorization: str | None
    status: int  # what the double answered
    host: str | None = None
    received_at: float = field(default_factory=time.monotonic)

    @property
    def token(self) -> str | None:
        prefix = "Bearer "
        if self.authorization and self.authorization.startswith(prefix):
            return self.authorization[len(prefix) :]
        return None


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _segment(value: dict[str, Any]) -> str:
    return _b64(json.dumps(value, separators=(",", ":")).encode())


class ControlPlaneDouble(LoopbackServer):
    name = "control-plane-double"

    """Start with `start()` (or `with ControlPlaneDouble(...) as cp:`); stop with `stop()`."""

    def __init__(self, node_id: str = "node-test", issuer: str | None = None) -> None:
        super().__init__()
        self.node_id = node_id
        self._issuer = issuer
        self.keys: list[SigningKey] = [new_signing_key()]
        self.signing_key = self.keys[0]
        self.jwks_fetches = 0
        self.jwks_status = 200
        # Published beside the signing keys as they are (e.g. an RSA key the agent skips).
        self.extra_jwks: list[dict[str, Any]] = []
        self.callback_tokens: set[str] = {INITIAL_CALLBACK_TOKEN}
        self._queued_tokens: list[str] = []
        self._failures: dict[str, list[int]] = {}
        self._callbacks: list[Callback] = []
        self._lock = threading.Condition()
        self.agent_credential: AgentCredential | None = AgentCredential(
            kind="api_key", secret=DOUBLE_MODEL_KEY
        )
        self.git_tokens: dict[str, GitToken] = {}  # workspace id -> its read token
        self.chat_links: dict[str, str] = {}  # chat id -> the workspace that may write it
        self.chat_messages: list[dict[str, Any]] = []  # ingested, each id once, in order
        self.ingest_delay_seconds = 0.0
        self.unavailable: set[str] = set()  # kinds answered 503 until removed

    # --- lifecycle --------------------------------------------------------------------------

    def routes(self, app: web.Application) -> None:
        app.router.add_get("/.well-known/jwks.json", self._jwks)
        app.router.add_get("/api/workspaces/{target}/agent-credential", self._callback)
        app.router.add_post("/api/workspaces/{target}/{kind}", self._callback)
        app.router.add_post("/api/nodes/{target}/{kind}", self._callback)

    @property
    def jwks_url(self) -> str:
        return f"{self.url}/.well-known/jwks.json"

    @property
    def issuer(self) -> str:
        return self._issuer or self.url

    def agent_env(self) -> dict[str, str]:
        """The SAM_* variables that point an agent at this double."""
        return {
            "SAM_NODE_ID": self.node_id,
            "SAM_CONTROL_PLANE_URL": self.url,
            "SAM_JWKS_URL": self.jwks_url,
            "SAM_JWT_ISSUER": self.issuer,
        }

    # --- keys -------------------------------------------------------------------------------

    def rotate(self, retire_old: bool = False) -> SigningKey:
        """A new signing key, published at once; old keys stay published unless retired."""
        key = new_signing_key()
        with self._lock:
            self.keys = [key] if retire_old else [*self.keys, key]
            self.signing_key = key
        return key

    def jwks(self) -> dict[str, Any]:
        with self._lock:
            return {"keys": [*(key.public_jwk() for key in self.keys), *self.extra_jwks]}

    async def _jwks(self, request: web.Request) -> web.Response:
        with self._lock:
            self.jwks_fetches += 1
            status = self.jwks_status
        if status != 200:
            return web.json_response({"error": "unavailable", "message": "test"}, status=status)
        return web.json_response(self.jwks())

    # --- tokens -----------------------------------------------------------------------------

    def claims(self, aud: str, ttl_seconds: float = TOKEN_TTL_SECONDS, **extra: Any) -> dict:
        now = int(time.time())
        base = {"iss": self.issuer, "aud": aud, "iat": now, "exp": int(now + ttl_seconds)}
        base.update(extra)
        return {name: value for name, value in base.items() if value is not None}

    def sign(self, claims: dict[str, Any], key: SigningKey | None = None, **headers: Any) -> str:
        key = key or self.signing_key
        return jwt.encode(
            claims, key.private_key, algorithm="ES256", headers={"kid": key.kid, **headers}
        )

    def mint(self, aud: str = AGENT_AUDIENCE, *, key: SigningKey | None = None, **claims: Any):
        """A correctly signed token; claims given as None are left out."""
        return self.sign(self.claims(aud, **claims), key)

    def agent_token(self, node: str | None = None, **claims: Any) -> str:
        return self.mint(AGENT_AUDIENCE, node=node or self.node_id, **claims)

    def terminal_token(
        self, workspace: str, node: str | None = None, sub: str = "user-1", **claims: Any
    ) -> str:
        return self.mint(
            TERMINAL_AUDIENCE, node=node or self.node_id, workspace=workspace, sub=sub, **claims
        )

    def bad_tokens(self, workspace: str, route: str = "http") -> dict[str, BadToken]:
        """Every token the agent must refuse on a `route` ("http" agent route, or "ws": a
        terminal/boot-log WebSocket of `workspace`), with the status it must answer."""
        node = self.node_id
        agent = self.claims(AGENT_AUDIENCE, node=node)
        terminal = self.claims(TERMINAL_AUDIENCE, node=node, workspace=workspace, sub="u")
        kid = self.signing_key.kid
        stranger = new_signing_key("unknown-" + secrets.token_hex(4))
        rsa_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        signed = self.sign(agent)
        head, _, signature = signed.split(".")
        cases = {
            "garbage": BadToken("not-a-jwt", 401),
            "expired": BadToken(
                self.sign({**agent, "exp": int(time.time()) - EXPIRED_AGO_SECONDS}), 401
            ),
            "no_exp": BadToken(self.sign({k: v for k, v in agent.items() if k != "exp"}), 401),
            "not_yet_valid": BadToken(self.sign({**agent, "nbf": int(time.time()) + 600}), 401),
            "wrong_issuer": BadToken(self.sign({**agent, "iss": "https://evil.example"}), 401),
            "alg_none": BadToken(self.unsigned_token(agent, kid), 401),
            "hs256_public_key": BadToken(self.hmac_token(agent, kid), 401),
            "rs256": BadToken(jwt.encode(agent, rsa_key, "RS256", headers={"kid": kid}), 401),
            "unknown_kid": BadToken(self.sign(agent, stranger), 401),
            "no_kid": BadToken(jwt.encode(agent, self.signing_key.private_key, "ES256"), 401),
            "wrong_key_for_kid": BadToken(
                jwt.encode(agent, stranger.private_key, "ES256", headers={"kid": kid}), 401
            ),
            "tampered": BadToken(f"{head}.{_segment({**agent, 'node': 'x'})}.{signature}", 401),
            "wrong_audience": BadToken(self.sign({**agent, "aud": "sam:other"}), 403),
            "wrong_node": BadToken(self.sign({**agent, "node": "another-node"}), 403),
            "no_node": BadToken(self.sign({k: v for k, v in agent.items() if k != "node"}), 403),
        }
        if route == "ws":
            cases["terminal_wrong_workspace"] = BadToken(
                self.sign({**terminal, "workspace": "another-workspace"}), 403
            )
            cases["terminal_wrong_node"] = BadToken(
                self.sign({**terminal, "node": "another-node"}), 403
            )
        else:
            # A browser terminal token opens terminals, nothing else.
            cases["terminal_token_on_agent_route"] = BadToken(self.sign(terminal), 403)
        return cases

    def unsigned_token(self, claims: dict[str, Any], kid: str | None = None) -> str:
        header = {"alg": "none", "typ": "JWT", **({"kid": kid} if kid else {})}
        return f"{_segment(header)}.{_segment(claims)}."

    def hmac_token(self, claims: dict[str, Any], kid: str | None = None) -> str:
        """HS256 keyed with the public key's PEM: the classic algorithm-confusion attack."""
        header = {"alg": "HS256", "typ": "JWT", **({"kid": kid} if kid else {})}
        signing_input = f"{_segment(header)}.{_segment(claims)}"
        digest = hmac.new(self.signing_key.public_pem(), signing_input.encode(), hashlib.sha256)
        return f"{signing_input}.{_b64(digest.digest())}"

    # --- callbacks --------------------------------------------------------------------------

    def queue_callback_token(self, token: str | None = None) -> str:
        """The next heartbeat reply carries this new callback token (accepted from then on)."""
        token = token or f"callback-token-{secrets.token_hex(8)}"
        with self._lock:
            self._queued_tokens.append(token)
        return token

    def link_chat(self, chat_id: str, workspace_id: str) -> None:
        with self._lock:
            self.chat_links[chat_id] = workspace_id

    def messages_of(self, chat_id: str) -> list[dict[str, Any]]:
        with self._lock:
            return [m for m in self.chat_messages if m["chat_id"] == chat_id]

    def _ingest(self, workspace_id: str, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        batch = MessageBatch.model_validate(body)
        for message in batch.messages:
            if self.chat_links.get(message.chat_id) != workspace_id:
                text = f"chat {message.chat_id} is not linked to workspace {workspace_id}"
                return 403, {"error": "chat_not_linked", "message": text}
        known = {m["id"] for m in self.chat_messages}
        accepted = 0
        for message in batch.messages:
            if message.id not in known:
                known.add(message.id)
                self.chat_messages.append(message.model_dump(mode="json"))
                accepted += 1
        result = IngestResult(accepted=accepted, duplicates=len(batch.messages) - accepted)
        return 200, result.model_dump(mode="json")

    def fail_next(self, kind: str, status: int = 503, times: int = 1) -> None:
        """Answer the next `times` callbacks of `kind` with `status`."""
        with self._lock:
            self._failures.setdefault(kind, []).extend([status] * times)

    async def _callback(self, request: web.Request) -> web.Response:
        kind = request.match_info.get("kind") or request.path.rsplit("/", 1)[-1]
        kind = kind if kind in CALLBACK_KINDS else "other"
        raw = await request.read()
        if kind == "chat-messages" and self.ingest_delay_seconds:
            await asyncio.sleep(self.ingest_delay_seconds)
        try:
            body = json.loads(raw) if raw else None
        except ValueError:
            body = raw.decode(errors="replace")
        authorization = request.headers.get("Authorization")
        on_node = request.path.startswith("/api/nodes/")
        reply: dict[str, Any] = {"ok": True}
        problem = _invalid_body(request.path, kind, body)
        with self._lock:
            token = authorization[7:] if authorization and authorization[:7] == "Bearer " else None
            failures = self._failures.get(kind)
            if kind == "other":
                status = 404
                reply = {"error": "not_found", "message": f"no route {request.path}"}
            elif token not in self.callback_tokens:
                status = 401
                reply = {"error": "unauthorized", "message": "unknown callback token"}
            elif on_node and request.match_info["target"] != self.node_id:
                status = 403
                reply = {"error": "token_scope", "message": f"the token is for {self.node_id}"}
            elif kind == "chat-messages" and len(raw) > MAX_BATCH_BYTES:
                status = 413
                reply = {"error": "batch_too_large", "message": f"over {MAX_BATCH_BYTES}"}
            elif problem is not None:
                status = 400
                code = "invalid_batch" if kind == "chat-messages" else "invalid_request"
                reply = {"error": code, "message": problem}
            elif kind in self.unavailable:
                status = 503
                reply = {"error": "unavailable", "message": "down, as the test asked"}
            elif failures:
                status = failures.pop(0)
                reply = {"error": "unavailable", "message": "failure requested by the test"}
            else:
                status = 200
                if kind == "agent-credential":
                    status, reply = self._credential_reply()
                elif kind == "git-token":
                    status, reply = self._git_token_reply(request.match_info["target"])
                elif kind == "chat-messages":
                    status, reply = self._ingest(request.match_info["target"], body)
                elif kind == "heartbeat":
                    beat = Beat(status=LifecycleState.RUNNING, health=NodeHealth.HEALTHY)
                    if self._queued_tokens:
                        beat.callback_token = self._queued_tokens.pop(0)
                        self.callback_tokens.add(beat.callback_token)
                    reply = beat.model_dump(mode="json", exclude_none=True)
            self._callbacks.append(
                Callback(
                    request.method,
                    request.path,
                    kind,
                    request.match_info["target"],
                    body,
                    authorization,
                    status,
                    request.headers.get("Host"),
                )
            )
            self._lock.notify_all()
        return web.json_response(reply, status=status)

    def _credential_reply(self) -> tuple[int, dict[str, Any]]:
        if self.agent_credential is None:
            text = "add your Anthropic key in Settings → Agent"
            return 409, {"error": AGENT_CREDENTIAL_MISSING, "message": text}
        return 200, self.agent_credential.model_dump(mode="json")

    def _git_token_reply(self, workspace_id: str) -> tuple[int, dict[str, Any]]:
        token = self.git_tokens.get(workspace_id)
        if token is None:
            text = f"{workspace_id}'s repository is not on the configured GitHub"
            return 409, {"error": "repository_not_on_github", "message": text}
        return 200, token.model_dump(mode="json")

    def callbacks(self, kind: str | None = None, target: str | None = None) -> list[Callback]:
        with self._lock:
            return [
                c
                for c in self._callbacks
                if (kind is None or c.kind == kind) and (target is None or c.target == target)
            ]

    def heartbeats(self) -> list[Callback]:
        return self.callbacks("heartbeat")

    def _matching(self, kind: str | None, target: str | None, where) -> list[Callback]:
        found = self.callbacks(kind, target)
        return [c for c in found if where(c)] if where else found

    def wait_for(
        self,
        kind: str | None = None,
        count: int = 1,
        target: str | None = None,
        where: Callable[[Callback], bool] | None = None,
        timeout: float = WAIT_TIMEOUT_SECONDS,
    ) -> list[Callback]:
        """Block until `count` matching callbacks arrived; returns them (raises on timeout).
        In an async test that runs the agent in-process, use `wait_for_async`."""
        deadline = time.monotonic() + timeout
        with self._lock:
            while True:
                found = self._matching(kind, target, where)
                if len(found) >= count:
                    return found
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise TimeoutError(self._timeout_message(kind, count, timeout))
                self._lock.wait(remaining)

    async def wait_for_async(
        self,
        kind: str | None = None,
        count: int = 1,
        target: str | None = None,
        where: Callable[[Callback], bool] | None = None,
        timeout: float = WAIT_TIMEOUT_SECONDS,
    ) -> list[Callback]:
        deadline = time.monotonic() + timeout
        while True:
            found = self._matching(kind, target, where)
            if len(found) >= count:
                return found
            if time.monotonic() > deadline:
                raise TimeoutError(self._timeout_message(kind, count, timeout))
            await asyncio.sleep(WAIT_POLL_SECONDS)

    def _timeout_message(self, kind: str | None, count: int, timeout: float) -> str:
        seen = [(c.kind, c.target, c.status) for c in self.callbacks()]
        return f"no {count} {kind or 'any'} callbacks within {timeout}s; received {seen}"


def _invalid_body(path: str, kind: str, body: Any) -> str | None:
    """Why the real control plane would refuse this callback body (None: it would not)."""
    if kind in ("agent-credential", "git-token"):
        return None if body is None else f"{kind} takes no body"
    on_node = path.startswith("/api/nodes/")
    model = {
        "boot-log": BootLogEntry,
        "ready": NodeReady if on_node else WorkspaceReady,
        "provisioning-failed": ProvisioningFailed,
        "heartbeat": Heartbeat,
        "chat-messages": MessageBatch,
    }.get(kind)
    if model is None:
        return f"no callback {path}"
    try:
        model.model_validate(body)
    except ValidationError as exc:
        return str(exc)
    return None
