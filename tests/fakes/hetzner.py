"""A loopback Hetzner Cloud API (`https://api.hetzner.cloud/v1/...`), real wire format.

Every call needs `Authorization: Bearer <token>` with a token from `add_token()` (each
token is one Hetzner project); otherwise Hetzner's 401 `{"error": {"code":
"unauthorized", "message": "unable to authenticate"}}`.

    GET    /v1/locations              {"locations": [...], "meta": {"pagination"}}
    GET    /v1/server_types           {"server_types": [...], "meta": ...}
    POST   /v1/servers                201 {"server", "action", "next_actions", "root_password"}
    GET    /v1/servers                ?label_selector= &name= &status=, paginated
    GET    /v1/servers/{id}           {"server"}
    DELETE /v1/servers/{id}           {"action"} (delete_server)
    GET    /v1/actions/{id}           {"action"}

Servers live in the caller's project; names are unique per project (409
`uniqueness_error`). Faults: `fail_next(method, path, status, code)` on any route (412 /
429 / 5xx in Hetzner's error shape, optionally with Retry-After), and
`make_unavailable(location)`: creating a server there answers 412 `resource_unavailable`.

With `boot=True`, "create server" boots a *local* agent from the `user_data` it was given,
following the node's cloud-init (tests/fakes/first_boot.py): the server's IPv4 is
127.0.0.1 and its agent listens on `server.boot.agent_port`. Deleting the server (or
stopping the fake) stops that agent. `all_servers()` is for leak checks.
"""

import asyncio
import datetime
import itertools
import re
import secrets
import tempfile
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aiohttp import web

from tests.fakes.first_boot import FirstBoot
from tests.fakes.loopback import LoopbackServer, bearer

DEFAULT_PER_PAGE = 25
MAX_PER_PAGE = 50
RATE_LIMIT_PER_HOUR = 3600
MAX_USER_DATA_BYTES = 32 * 1024
IMAGES = {"debian-12": {"id": 114690387, "os_flavor": "debian", "os_version": "12"}}
SERVER_NAME = re.compile(r"^[a-zA-Z0-9]([a-zA-Z0-9-]{0,61}[a-zA-Z0-9])?$")
LABEL_VALUE = re.compile(r"^([a-zA-Z0-9]([a-zA-Z0-9._-]{0,61}[a-zA-Z0-9])?)?$")
LABEL_KEY = re.compile(r"^([a-z0-9.-]+/)?[a-zA-Z0-9]([a-zA-Z0-9._-]{0,61}[a-zA-Z0-9])?$")

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
    type_id: int,
    name: str,
    cores: int,
    memory_gb: float,
    disk_gb: int,
    hourly: str,
    monthly: str,
    cpu_type: str = "shared",
    architecture: str = "x86",
    deprecated: bool = False,
    locations: tuple[str, ...] = ("fsn1", "nbg1", "hel1"),
) -> dict[str, Any]:
    return {
        "id": type_id,
        "name": name,
        "description": name.upper(),
        "cores": cores,
        "memory": memory_gb,
        "disk": disk_gb,
        "deprecated": deprecated,
        "deprecation": {
            "announced": "2024-06-01T00:00:00+00:00",
            "unavailable_after": "2024-09-01T00:00:00+00:00",
        }
        if deprecated
        else None,
        "prices": [
            {
                "location": location,
                "price_hourly": {"net": hourly, "gross": hourly},
                "price_monthly": {"net": monthly, "gross": monthly},
                "included_traffic": 21990232555520,
                "price_per_tb_traffic": {"net": "1.0000", "gross": "1.1900"},
            }
            for location in locations
        ],
        "storage_type": "local",
        "cpu_type": cpu_type,
        "architecture": architecture,
    }


SERVER_TYPES: list[dict[str, Any]] = [
    _server_type(104, "cx22", 2, 4.0, 40, "0.0060", "3.7900"),
    _server_type(105, "cx32", 4, 8.0, 80, "0.0110", "6.8000"),
    _server_type(106, "cx42", 8, 16.0, 160, "0.0270", "16.4000"),
    # Cheaper, and each unusable for a node: ARM (the artifact is x86_64), withdrawn.
    _server_type(45, "cax11", 2, 4.0, 40, "0.0053", "3.2900", architecture="arm"),
    _server_type(3, "cx21", 2, 4.0, 40, "0.0050", "3.1000", deprecated=True),
    # Dedicated vCPUs: fits every size, never the cheapest.
    _server_type(96, "ccx13", 2, 8.0, 80, "0.0190", "12.4900", cpu_type="dedicated"),
]


@dataclass
class Server:
    id: int
    name: str
    status: str
    server_type: dict[str, Any]
    location: dict[str, Any]
    image: str
    labels: dict[str, str]
    user_data: str | None
    created: str
    project: str
    boot: FirstBoot | None = None

    def public(self) -> dict[str, Any]:
        """The Server object as Hetzner returns it."""
        return {
            "id": self.id,
            "name": self.name,
            "status": self.status,
            "created": self.created,
            "public_net": {
                "ipv4": {
                    "id": self.id + 1000,
                    "ip": "127.0.0.1",
                    "blocked": False,
                    "dns_ptr": "static.1.0.0.127.clients.your-server.de",
                },
                "ipv6": {"id": self.id + 2000, "ip": "::1/128", "blocked": False, "dns_ptr": []},
                "floating_ips": [],
                "firewalls": [],
            },
            "private_net": [],
            "server_type": self.server_type,
            "datacenter": {
                "id": self.location["id"],
                "name": f"{self.location['name']}-dc1",
                "description": f"{self.location['description']} DC 1",
                "location": self.location,
            },
            "image": {
                "id": IMAGES[self.image]["id"],
                "type": "system",
                "status": "available",
                "name": self.image,
                "description": self.image.replace("-", " ").title(),
                "os_flavor": IMAGES[self.image]["os_flavor"],
                "os_version": IMAGES[self.image]["os_version"],
                "architecture": "x86",
            },
            "iso": None,
            "rescue_enabled": False,
            "locked": False,
            "backup_window": None,
            "outgoing_traffic": 0,
            "ingoing_traffic": 0,
            "included_traffic": 21990232555520,
            "protection": {"delete": False, "rebuild": False},
            "labels": dict(self.labels),
            "volumes": [],
            "load_balancers": [],
            "primary_disk_size": self.server_type["disk"],
            "placement_group": None,
        }


@dataclass
class Project:
    """What one API token can see."""

    token: str
    read_only: bool = False
    servers: dict[int, Server] = field(default_factory=dict)


@dataclass(frozen=True)
class Recorded:
    method: str
    path: str
    query: dict[str, str]
    token: str | None  # the bearer token sent, so tests can see which project called
    status: int
    body: Any = None


@dataclass
class _Fault:
    status: int
    code: str
    message: str
    retry_after: int | None = None


def error(
    status: int, code: str, message: str, details: Any = None, headers: dict | None = None
) -> web.Response:
    """Hetzner's error body."""
    body: dict[str, Any] = {"error": {"code": code, "message": message}}
    if details is not None:
        body["error"]["details"] = details
    return web.json_response(body, status=status, headers=headers)


def _now() -> str:
    return datetime.datetime.now(datetime.UTC).replace(microsecond=0).isoformat()


class FakeHetzner(LoopbackServer):
    name = "hetzner"

    def __init__(self, boot: bool = False, boot_root: Path | None = None) -> None:
        super().__init__()
        self.projects: dict[str, Project] = {}
        self.locations = [dict(location) for location in LOCATIONS]
        self.server_types = [dict(server_type) for server_type in SERVER_TYPES]
        self.requests: list[Recorded] = []
        self.actions: dict[int, dict[str, Any]] = {}
        self.unavailable: set[str] = set()
        self._boot = boot
        self._boot_root = boot_root
        self._faults: dict[tuple[str, str], list[_Fault]] = {}
        self._lock = threading.Lock()
        self._ids = itertools.count(4_200_001)
        self._boots: list[threading.Thread] = []

    def stop(self) -> None:
        for server in self.all_servers():
            if server.boot is not None:
                server.boot.shut_down()
        super().stop()

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
        retry_after: int | None = None,
    ) -> None:
        """Answer the next `times` calls of `method path` with Hetzner's error `code`.

        E.g. (412, "resource_unavailable"), (429, "rate_limit_exceeded"), (503, "unavailable").
        """
        with self._lock:
            self._faults.setdefault((method.upper(), path), []).extend(
                [_Fault(status, code, message, retry_after)] * times
            )

    def make_unavailable(self, *locations: str) -> None:
        with self._lock:
            self.unavailable.update(locations)

    def calls(self, path: str, method: str | None = None) -> list[Recorded]:
        with self._lock:
            return [
                call
                for call in self.requests
                if call.path == path and (method is None or call.method == method)
            ]

    def servers(self, token: str) -> list[Server]:
        with self._lock:
            return list(self.projects[token].servers.values())

    def all_servers(self) -> list[Server]:
        with self._lock:
            return [s for project in self.projects.values() for s in project.servers.values()]

    # --- dispatch ---------------------------------------------------------------------------

    async def handle(self, request: web.Request) -> web.StreamResponse:
        token = bearer(request)
        body = None
        if request.can_read_body:
            try:
                body = await request.json()
            except ValueError:
                body = ...
        response = await self._answer(request, token, body)
        response.headers.update(
            {
                "RateLimit-Limit": str(RATE_LIMIT_PER_HOUR),
                "RateLimit-Remaining": str(RATE_LIMIT_PER_HOUR - 1),
                "RateLimit-Reset": "0",
            }
        )
        recorded_body = None if body is ... else body
        with self._lock:
            self.requests.append(
                Recorded(
                    request.method,
                    request.path,
                    dict(request.query),
                    token,
                    response.status,
                    recorded_body,
                )
            )
        return response

    async def _answer(self, request: web.Request, token: str | None, body: Any) -> web.Response:
        with self._lock:
            project = self.projects.get(token) if token else None
        if project is None:
            return error(401, "unauthorized", "unable to authenticate")
        with self._lock:
            queued = self._faults.get((request.method, request.path))
            fault = queued.pop(0) if queued else None
        if fault is not None:
            headers = {"Retry-After": str(fault.retry_after)} if fault.retry_after else None
            return error(fault.status, fault.code, fault.message, headers=headers)
        if body is ...:
            return error(400, "json_error", "Invalid JSON input in your request")
        routes = (
            ("GET", r"/v1/locations", self._list_locations),
            ("GET", r"/v1/server_types", self._list_server_types),
            ("GET", r"/v1/servers", self._list_servers),
            ("POST", r"/v1/servers", self._create_server),
            ("GET", r"/v1/servers/(?P<id>[^/]+)", self._get_server),
            ("DELETE", r"/v1/servers/(?P<id>[^/]+)", self._delete_server),
            ("GET", r"/v1/actions/(?P<id>[^/]+)", self._get_action),
        )
        allowed = False
        for method, pattern, handler in routes:
            match = re.fullmatch(pattern, request.path)
            if match is None:
                continue
            if method == request.method:
                answer = handler(request, project, body, **match.groupdict())
                return await answer if asyncio.iscoroutine(answer) else answer
            allowed = True
        if allowed:
            return error(405, "method_not_allowed", "method not allowed")
        return error(404, "not_found", "not found")

    # --- handlers ---------------------------------------------------------------------------

    def _list_locations(self, request: web.Request, project: Project, body: Any) -> web.Response:
        return _paginated(request, "locations", _by_name(request, self.locations))

    def _list_server_types(self, request: web.Request, project: Project, body: Any) -> web.Response:
        return _paginated(request, "server_types", _by_name(request, self.server_types))

    def _list_servers(self, request: web.Request, project: Project, body: Any) -> web.Response:
        try:
            selector = _parse_selector(request.query.get("label_selector", ""))
        except ValueError as exc:
            return error(400, "invalid_input", f"invalid label_selector: {exc}")
        with self._lock:
            servers = [
                server.public()
                for server in project.servers.values()
                if all(test(server.labels) for test in selector)
                and request.query.get("name") in (None, server.name)
                and request.query.get("status") in (None, server.status)
            ]
        return _paginated(request, "servers", servers)

    def _get_server(
        self, request: web.Request, project: Project, body: Any, id: str
    ) -> web.Response:
        with self._lock:
            server = project.servers.get(int(id)) if id.isdigit() else None
            if server is None:
                return error(404, "not_found", f"server with ID '{id}' not found")
            return web.json_response({"server": server.public()})

    def _create_server(self, request: web.Request, project: Project, body: Any) -> web.Response:
        if project.read_only:
            return error(403, "token_readonly", "the token is read-only")
        problem = self._invalid_create(body)
        if problem:
            return error(400, "invalid_input", problem)
        kind = next(t for t in self.server_types if body["server_type"] in (t["name"], t["id"]))
        location = next(loc for loc in self.locations if loc["name"] == body["location"])
        if location["name"] in self.unavailable:
            return error(
                412,
                "resource_unavailable",
                f"server type {kind['name']} is currently unavailable in {location['name']}",
            )
        with self._lock:
            if any(s.name == body["name"] for s in project.servers.values()):
                return error(
                    409, "uniqueness_error", "server name is already used", {"fields": ["name"]}
                )
            server = Server(
                id=next(self._ids),
                name=body["name"],
                status="initializing",
                server_type=kind,
                location=location,
                image=body["image"],
                labels=dict(body.get("labels") or {}),
                user_data=body.get("user_data"),
                created=_now(),
                project=project.token,
            )
            project.servers[server.id] = server
            action = self._action("create_server", server.id, "running")
        if self._boot and server.user_data:
            self._start_boot(server)
        server.status = "running"  # the VM itself is up at once; cloud-init goes on inside
        answer = {
            "server": {**server.public(), "status": "initializing"},
            "action": action,
            "next_actions": [self._action("start_server", server.id, "running")],
            "root_password": None,
        }
        return web.json_response(answer, status=201)

    def _invalid_create(self, body: Any) -> str | None:
        if not isinstance(body, dict):
            return "invalid input: expected an object"
        missing = [key for key in ("name", "server_type", "image") if not body.get(key)]
        if missing:
            return f"invalid input in fields '{', '.join(missing)}'"
        if not isinstance(body["name"], str) or not SERVER_NAME.match(body["name"]):
            return "invalid input in field 'name'"
        if not any(body["server_type"] in (t["name"], t["id"]) for t in self.server_types):
            return f"server type {body['server_type']} not found"
        if body["image"] not in IMAGES:
            return f"image {body['image']} not found"
        if not any(loc["name"] == body.get("location") for loc in self.locations):
            return "invalid input in field 'location'"
        labels = body.get("labels") or {}
        if not isinstance(labels, dict) or not all(
            isinstance(k, str)
            and isinstance(v, str)
            and LABEL_KEY.match(k)
            and LABEL_VALUE.match(v)
            for k, v in labels.items()
        ):
            return "invalid input in field 'labels'"
        user_data = body.get("user_data")
        if user_data is not None and len(str(user_data).encode()) > MAX_USER_DATA_BYTES:
            return "invalid input in field 'user_data': must be at most 32 KiB"
        return None

    async def _delete_server(
        self, request: web.Request, project: Project, body: Any, id: str
    ) -> web.Response:
        if project.read_only:
            return error(403, "token_readonly", "the token is read-only")
        with self._lock:
            server = project.servers.pop(int(id), None) if id.isdigit() else None
            if server is None:
                return error(404, "not_found", f"server with ID '{id}' not found")
            action = self._action("delete_server", server.id, "success")
        if server.boot is not None:  # off this loop: it waits for the agent to stop
            await asyncio.get_running_loop().run_in_executor(None, server.boot.shut_down)
        return web.json_response({"action": action})

    def _get_action(
        self, request: web.Request, project: Project, body: Any, id: str
    ) -> web.Response:
        with self._lock:
            action = self.actions.get(int(id)) if id.isdigit() else None
        if action is None:
            return error(404, "not_found", f"action with ID '{id}' not found")
        return web.json_response({"action": action})

    # --- helpers ----------------------------------------------------------------------------

    def _action(self, command: str, server_id: int, status: str) -> dict[str, Any]:
        """A new action; 'running' ones are reported as finished when next read."""
        action_id = next(self._ids)
        action = {
            "id": action_id,
            "command": command,
            "status": status,
            "progress": 100 if status == "success" else 0,
            "started": _now(),
            "finished": _now() if status == "success" else None,
            "resources": [{"id": server_id, "type": "server"}],
            "error": None,
        }
        self.actions[action_id] = {**action, "status": "success", "progress": 100}
        return action

    def _start_boot(self, server: Server) -> None:
        root = Path(tempfile.mkdtemp(prefix=f"vm-{server.id}-", dir=self._boot_root))
        server.boot = FirstBoot(server.user_data or "", root)
        thread = threading.Thread(target=server.boot.run, name=f"boot-{server.id}", daemon=True)
        thread.start()
        self._boots.append(thread)


def _parse_selector(selector: str) -> list[Any]:
    """Hetzner's label selector: `k=v`, `k==v`, `k!=v`, `k`, `!k`, comma-separated."""
    tests: list[Any] = []
    for term in filter(None, (part.strip() for part in selector.split(","))):
        if "!=" in term:
            key, value = term.split("!=", 1)
            tests.append(lambda labels, k=key, v=value: labels.get(k) != v)
        elif "=" in term:
            key, value = term.replace("==", "=").split("=", 1)
            tests.append(lambda labels, k=key, v=value: labels.get(k) == v)
        elif term.startswith("!"):
            tests.append(lambda labels, k=term[1:]: k not in labels)
        elif LABEL_KEY.match(term):
            tests.append(lambda labels, k=term: k in labels)
        else:
            raise ValueError(term)
    return tests


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
