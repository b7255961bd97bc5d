"""The model proxy: an agent session's way to the model API, with the user's key added on
the way out (docs/protocols/agent-sessions.md, "The model proxy").

Mounted on the workspace's channel at `/model`, which admits only that workspace's own
requests (its network, its channel token) and sets `request["workspace_id"]`. The adapter
gets `ANTHROPIC_BASE_URL = <channel>/model/sessions/<sid>` and the channel token as its
key, so every Messages API call arrives here as

    GET|POST /sessions/{sid}/{path}   →   {base_url}/{path}   (query string kept)

where `base_url` is the credential's or the node's default (SAM_MODEL_BASE_URL). The
stand-in key is dropped and the real one set (`x-api-key`, or for a Claude Code OAuth
token `Authorization: Bearer` plus the OAuth beta); hop-by-hop headers are dropped both
ways; status, headers and body come back as the upstream sent them, the body chunk by
chunk as it arrives (SSE is never buffered). Token usage of `POST …/v1/messages` is added
to the session's totals in the agent's SQLite (agent/channel/usage.py).

The proxy's own errors use the Anthropic error shape, so the adapter shows their message:
`{"type": "error", "error": {"type": code, "message": text}}` — 404
`model_session_unknown`, 400 `bad_model_path`, 413 `request_too_large`, 502
`model_upstream_unreachable`.
"""

import asyncio
import logging
import time

import aiohttp
from aiohttp import web
from multidict import CIMultiDict, CIMultiDictProxy
from yarl import URL

from agent.channel.listener import WORKSPACE_ID
from agent.channel.model_sessions import ModelSession, ModelSessions
from agent.channel.usage import UsageMeter
from agent.persistence import Store
from wire.callbacks import AgentCredential

log = logging.getLogger("agent.model_proxy")

MAX_REQUEST_BYTES = 32 * 1024 * 1024  # a long conversation with images, and then some
CONNECT_TIMEOUT_SECONDS = 10.0
# Between two chunks of an answer: a model may think a long while before a whole answer.
READ_TIMEOUT_SECONDS = 600.0
OAUTH_BETA = "oauth-2025-04-20"
MESSAGES_PATH = "v1/messages"
# RFC 9110 §7.6.1, plus what this hop sets itself.
HOP_BY_HOP = frozenset(
    {
        "connection",
        "keep-alive",
        "proxy-authenticate",
        "proxy-authorization",
        "proxy-connection",
        "te",
        "trailer",
        "transfer-encoding",
        "upgrade",
        "host",
        "content-length",
    }
)
# The stand-in credential; and the adapter's Accept-Encoding, replaced by `identity` so
# that the meter reads the answer as it passes (SSE is not compressed in any case).
DROPPED_ON_THE_WAY_OUT = frozenset({"authorization", "x-api-key", "accept-encoding"})

# How often a relay checks that the adapter is still there while the model is quiet.
DISCONNECT_POLL_SECONDS = 0.5
# Ends of a relay that are no fault of ours: the adapter went away, or the upstream broke
# off mid-answer. What was relayed stays relayed; the usage seen so far is counted.
RELAY_ERRORS = (ConnectionResetError, aiohttp.ClientError, TimeoutError, asyncio.CancelledError)

SESSIONS = web.AppKey("model_sessions", ModelSessions)
STORE = web.AppKey("model_usage_store", Store)
CLIENT = web.AppKey("model_client", aiohttp.ClientSession)
DEFAULT_UPSTREAM = web.AppKey("model_default_upstream", str)


def new_model_client() -> aiohttp.ClientSession:
    """The proxy's own HTTP client (call inside the running loop): no total timeout, as an
    answer streams for as long as the model writes; no cookies kept between users."""
    return aiohttp.ClientSession(
        timeout=aiohttp.ClientTimeout(
            total=None, sock_connect=CONNECT_TIMEOUT_SECONDS, sock_read=READ_TIMEOUT_SECONDS
        ),
        cookie_jar=aiohttp.DummyCookieJar(),
        auto_decompress=False,  # bytes go back as they came, Content-Encoding and all
    )


def model_proxy(
    sessions: ModelSessions, store: Store, client: aiohttp.ClientSession, default_upstream: str
) -> web.Application:
    app = web.Application(client_max_size=MAX_REQUEST_BYTES)
    app[SESSIONS], app[STORE], app[CLIENT] = sessions, store, client
    app[DEFAULT_UPSTREAM] = default_upstream.rstrip("/")
    for method in ("GET", "POST"):
        app.router.add_route(method, "/sessions/{sid}/{tail:.*}", forward)
    return app


def model_error(status: int, code: str, message: str) -> web.Response:
    body = {"type": "error", "error": {"type": code, "message": message}}
    return web.json_response(body, status=status)


async def forward(request: web.Request) -> web.StreamResponse:
    workspace_id = request[WORKSPACE_ID]  # set by the channel, which admitted it
    session = request.app[SESSIONS].get(request.match_info["sid"], workspace_id)
    if session is None:
        return model_error(
            404,
            "model_session_unknown",
            "no running agent session with that id in this workspace: start a new session",
        )
    tail = request.match_info["tail"]
    if any(part in ("", ".", "..") for part in tail.split("/")):
        return model_error(400, "bad_model_path", f"not a model API path: /{tail}")
    body = await _read_body(request)
    if body is None:
        return model_error(
            413, "request_too_large", f"the request is over {MAX_REQUEST_BYTES} bytes"
        )
    base = session.credential.base_url or request.app[DEFAULT_UPSTREAM]
    # Segment by segment, so that an encoded "?" or "/" in the path stays one.
    url = URL(base.rstrip("/")).joinpath(*tail.split("/"))
    if request.rel_url.query:
        url = url.with_query(request.rel_url.query)
    headers = _outgoing(request.headers, session.credential)
    started = time.monotonic()
    try:
        upstream = await request.app[CLIENT].request(
            request.method, url, headers=headers, data=body, allow_redirects=False
        )
    except (aiohttp.ClientError, TimeoutError) as exc:
        log.warning(
            "model_proxy.unreachable session=%s upstream=%s error=%s",
            session.session_id,
            base,
            type(exc).__name__,
        )
        return model_error(
            502,
            "model_upstream_unreachable",
            f"could not reach the model API at {base} ({type(exc).__name__}): check the "
            "base URL in Settings → Agent, or try again in a minute",
        )
    async with upstream:
        counted = request.method == "POST" and tail == MESSAGES_PATH and upstream.status == 200
        return await _relay(request, upstream, session, counted, started)


async def _read_body(request: web.Request) -> bytes | None:
    """The request body, or None when it is over MAX_REQUEST_BYTES."""
    chunks, size = [], 0
    async for chunk in request.content.iter_any():
        size += len(chunk)
        if size > MAX_REQUEST_BYTES:
            return None
        chunks.append(chunk)
    return b"".join(chunks)


def _outgoing(incoming: CIMultiDictProxy[str], credential: AgentCredential) -> CIMultiDict[str]:
    dropped = HOP_BY_HOP | DROPPED_ON_THE_WAY_OUT | _connection_tokens(incoming)
    headers = CIMultiDict((k, v) for k, v in incoming.items() if k.lower() not in dropped)
    headers["Accept-Encoding"] = "identity"
    if credential.kind == "oauth_token":
        headers["Authorization"] = f"Bearer {credential.secret}"
        betas = [b.strip() for b in headers.getall("anthropic-beta", []) for b in b.split(",")]
        headers.popall("anthropic-beta", None)
        headers["anthropic-beta"] = ",".join([b for b in betas if b] + [OAUTH_BETA])
    else:
        headers["x-api-key"] = credential.secret
    return headers


async def _until_gone(request: web.Request) -> None:
    """Returns once the client's connection is closed (aiohttp does not cancel a handler
    on a disconnect unless its runner was told to)."""
    while request.transport is not None and not request.transport.is_closing():
        await asyncio.sleep(DISCONNECT_POLL_SECONDS)


def _connection_tokens(headers: CIMultiDictProxy[str]) -> frozenset[str]:
    """Headers the Connection header names are hop-by-hop too."""
    named = ",".join(headers.getall("Connection", []))
    return frozenset(token.strip().lower() for token in named.split(",") if token.strip())


async def _relay(
    request: web.Request,
    upstream: aiohttp.ClientResponse,
    session: ModelSession,
    counted: bool,
    started: float,
) -> web.StreamResponse:
    dropped = HOP_BY_HOP | _connection_tokens(upstream.headers)
    response = web.StreamResponse(status=upstream.status, reason=upstream.reason)
    for name, value in upstream.headers.items():
        if name.lower() not in dropped:
            response.headers.add(name, value)
    meter = UsageMeter(upstream.headers.get("Content-Type", ""))
    await response.prepare(request)

    async def copy() -> None:
        async for chunk in upstream.content.iter_any():
            if counted:
                meter.feed(chunk)
            await response.write(chunk)
        await response.write_eof()

    copying = asyncio.create_task(copy())
    watching = asyncio.create_task(_until_gone(request))
    try:
        await asyncio.wait({copying, watching}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        watching.cancel()
        if not copying.done():
            # The adapter went away (a cancelled turn): stop the model's answer too, by
            # closing the upstream connection (`async with upstream` in the caller).
            copying.cancel()
        results = await asyncio.gather(copying, watching, return_exceptions=True)
        if counted:
            counts = {"requests": 1, **meter.counts()}
            request.app[STORE].add_model_usage(session.session_id, session.workspace_id, counts)
    outcome = results[0]
    if isinstance(outcome, BaseException) and not isinstance(outcome, RELAY_ERRORS):
        raise outcome
    log.info(
        "model_proxy.relayed session=%s method=%s path=/%s status=%d complete=%s seconds=%.3f",
        session.session_id,
        request.method,
        request.match_info["tail"],
        upstream.status,
        outcome is None,
        time.monotonic() - started,
    )
    return response
