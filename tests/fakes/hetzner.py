"""A loopback Hetzner Cloud API (`https://api.hetzner.cloud/v1/...`), real wire format.

It runs an aiohttp server on 127.0.0.1 in a thread of its own, so sync tests and the edge
process can both reach it. Every call needs `Authorization: Bearer <token>` with a token
from `add_token()` (each token is one Hetzner project); otherwise it answers Hetzner's
401 `{"error": {"code": "unauthorized", "message": "unable to authenticate"}}`.

Served so far (the calls credential validation makes):
    GET /v1/locations      {"locations": [...], "meta": {"pagination": {...}}}
    GET /v1/server_types   {"server_types": [...], "meta": {"pagination": {...}}}

Built to grow: routes are one table (`_routes`) of (method, path pattern, handler); each
handler gets the caller's `Project` (where servers and actions will live); `fail_next()`
injects faults (412 / 429 / 5xx, Hetzner's error shape) on any route; `requests` records
every call.
"""

import asyncio
import re
import secrets
import threading
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from aiohttp import web

DEFAULT_PER_PAGE = 25
MAX_PER_PAGE = 50
RATE_LIMIT_PER_HOUR = 3600

LOCATIONS: list[dict[str, Any]] = [
    {
        "id": 1,
        "name": "fsn1",
        "description": "Falkenstein DC Park 1",
        "country": "DE",
        "city": "Falkenstein",
        "latitude": 50.47612,
        "longitude": 12.370071,
        "network_zone": "eu-central",
    },
    {
        "id": 2,
        "name": "nbg1",
        "description": "Nuremberg DC Park 1",
        "country": "DE",
        "city": "Nuremberg",
        "latitude": 49.452102,
        "longitude": 11.076665,
        "network_zone": "eu-central",
    },
    {
        "id": 3,
        "name": "hel1",
        "description": "Helsinki DC Park 1",
        "country": "FI",
        "city": "Helsinki",
        "latitude": 60.169855,
        "longitude": 24.938379,
        "network_zone": "eu-central",
    },
]


def _server_type(
    type_id: int, name: str, cores: int, memory_gb: float, disk_gb: int, hourly: str, monthly: str
) -> dict[str, Any]:
    return {
        "id": type_id,
        "name": name,
        "description": name.upper(),
        "cores": cores,
        "memory": memory_gb,
        "disk": disk_gb,
        "deprecated": False,
        "deprecation": None,
        "prices": [
            {
                "location": location["name"],
                "price_hourly": {"net": hourly, "gross": hourly},
                "price_monthly": {"net": monthly, "gross": monthly},
                "included_traffic": 21990232555520,
                "price_per_tb_traffic": {"net": "1.0000", "gross": "1.1900"},
            }
            for location in LOCATIONS
        ],
        "storage_type": "local",
        "cpu_type": "shared",
        "architecture": "x86",
    }


SERVER_TYPES: list[dict[str, Any]] = [
    _server_type(104, "cx22", 2, 4.0, 40, "0.0060", "3.7900"),
    _server_type(105, "cx32", 4, 8.0, 80, "0.0110", "6.8000"),
    _server_type(106, "cx42", 8, 16.0, 160, "0.0270", "16.4000"),
]


@dataclass
class Project:
    """What one API token can see; servers and actions will live here."""

    token: str
    read_only: bool = False


@dataclass(frozen=True)
class Recorded:
    method: str
    path: str
    query: dict[str, str]
    token: str | None  # the bearer token sent, so tests can see which project called
    status: int


@dataclass
class _Fault:
    status: int
    code: str
    message: str


Handler = Callable[[web.Request, Project], Awaitable[web.Response]]


def error(status: int, code: str, message: str, details: Any = None) -> web.Response:
    """Hetzner's error body."""
    body: dict[str, Any] = {"error": {"code": code, "message": message}}
    if details is not None:
        body["error"]["details"] = details
    return web.json_response(body, status=status)


class FakeHetzner:
    def __init__(self) -> None:
        self.projects: dict[str, Project] = {}
        self.locations = [dict(location) for location in LOCATIONS]
        self.server_types = [dict(server_type) for server_type in SERVER_TYPES]
        self.requests: list[Recorded] = []
        self._faults: dict[tuple[str, str], list[_Fault]] = {}
        self._lock = threading.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._runner: web.AppRunner | None = None
        self.port = 0
        self._routes: list[tuple[str, re.Pattern[str], Handler]] = [
            ("GET", re.compile(r"/v1/locations"), self._list_locations),
            ("GET", re.compile(r"/v1/server_types"), self._list_server_types),
        ]

    # --- lifecycle --------------------------------------------------------------------------

    def start(self) -> "FakeHetzner":
        ready = threading.Event()
        errors: list[BaseException] = []

        def run() -> None:
            loop = asyncio.new_event_loop()
            self._loop = loop
            try:
                loop.run_until_complete(self._serve())
            except BaseException as exc:  # surfaced to start()'s caller below
                errors.append(exc)
                ready.set()
                return
            ready.set()
            loop.run_forever()
            assert self._runner is not None
            loop.run_until_complete(self._runner.cleanup())
            loop.close()

        self._thread = threading.Thread(target=run, name="fake-hetzner", daemon=True)
        self._thread.start()
        ready.wait(10)
        if errors:
            raise errors[0]
        return self

    async def _serve(self) -> None:
        app = web.Application()
        app.router.add_route("*", "/{path:.*}", self._dispatch)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.port = self._runner.addresses[0][1]

    def stop(self) -> None:
        if self._loop and self._thread:
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(10)
            self._thread = None

    def __enter__(self) -> "FakeHetzner":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def url(self) -> str:
        """The base URL, as SAM_HETZNER_API_URL takes it (without `/v1`)."""
        return f"http://127.0.0.1:{self.port}"

    # --- test controls ----------------------------------------------------------------------

    def add_token(self, token: str | None = None, read_only: bool = False) -> str:
        """A valid API token for a new, empty project (Hetzner's tokens are 64 chars)."""
        token = token or secrets.token_urlsafe(48)[:64]
        with self._lock:
            self.projects[token] = Project(token, read_only)
        return token

    def fail_next(
        self,
        method: str,
        path: str,
        status: int,
        code: str = "service_error",
        message: str = "service error",
        times: int = 1,
    ) -> None:
        """Answer the next `times` calls of `method path` with Hetzner's error `code`.

        E.g. (412, "resource_unavailable"), (429, "rate_limit_exceeded"), (503, "unavailable").
        """
        with self._lock:
            self._faults.setdefault((method.upper(), path), []).extend(
                [_Fault(status, code, message)] * times
            )

    def calls(self, path: str) -> list[Recorded]:
        with self._lock:
            return [call for call in self.requests if call.path == path]

    # --- dispatch ---------------------------------------------------------------------------

    async def _dispatch(self, request: web.Request) -> web.Response:
        token = _bearer(request)
        response = await self._answer(request, token)
        headers = {
            "RateLimit-Limit": str(RATE_LIMIT_PER_HOUR),
            "RateLimit-Remaining": str(RATE_LIMIT_PER_HOUR - 1),
            "RateLimit-Reset": "0",
        }
        response.headers.update(headers)
        with self._lock:
            self.requests.append(
                Recorded(request.method, request.path, dict(request.query), token, response.status)
            )
        return response

    async def _answer(self, request: web.Request, token: str | None) -> web.Response:
        with self._lock:
            project = self.projects.get(token) if token else None
        if project is None:
            return error(401, "unauthorized", "unable to authenticate")
        with self._lock:
            queued = self._faults.get((request.method, request.path))
            fault = queued.pop(0) if queued else None
        if fault is not None:
            return error(fault.status, fault.code, fault.message)
        allowed = False
        for method, pattern, handler in self._routes:
            match = pattern.fullmatch(request.path)
            if match is None:
                continue
            if method == request.method:
                return await handler(request, project)
            allowed = True
        if allowed:
            return error(405, "method_not_allowed", "method not allowed")
        return error(404, "not_found", "not found")

    # --- handlers ---------------------------------------------------------------------------

    async def _list_locations(self, request: web.Request, project: Project) -> web.Response:
        return _paginated(request, "locations", _by_name(request, self.locations))

    async def _list_server_types(self, request: web.Request, project: Project) -> web.Response:
        return _paginated(request, "server_types", _by_name(request, self.server_types))


def _bearer(request: web.Request) -> str | None:
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    if scheme != "Bearer" or not token.strip():
        return None
    return token.strip()


def _by_name(request: web.Request, items: list[dict[str, Any]]) -> list[dict[str, Any]]:
    name = request.query.get("name")
    return [item for item in items if name is None or item["name"] == name]


def _paginated(request: web.Request, key: str, items: list[dict[str, Any]]) -> web.Response:
    try:
        page = max(1, int(request.query.get("page", "1")))
        per_page = min(MAX_PER_PAGE, max(1, int(request.query.get("per_page", DEFAULT_PER_PAGE))))
    except ValueError:
        return error(400, "invalid_input", "invalid input in fields 'page', 'per_page'")
    last_page = max(1, -(-len(items) // per_page))
    start = (page - 1) * per_page
    pagination = {
        "page": page,
        "per_page": per_page,
        "previous_page": page - 1 if page > 1 else None,
        "next_page": page + 1 if page < last_page else None,
        "last_page": last_page,
        "total_entries": len(items),
    }
    return web.json_response(
        {key: items[start : start + per_page], "meta": {"pagination": pagination}}
    )
