"""A loopback Cloudflare DNS records API (`/client/v4/zones/{zone}/dns_records`).

Real wire format: every answer is Cloudflare's envelope `{"success", "errors",
"messages", "result"}` (lists add `result_info`), records have Cloudflare's fields, and
the errors carry Cloudflare's codes: 10000 (authentication), 7003 (no such zone), 81044
(no such record), 81058 (an identical record exists), 9005/9006 (bad content/type).

    with FakeCloudflareDns() as dns:
        vars = {"SAM_CLOUDFLARE_API_URL": dns.url, "SAM_CLOUDFLARE_API_TOKEN": dns.token,
                "SAM_CLOUDFLARE_ZONE_ID": dns.zone_id}
        dns.records_named("vm-n1.localhost")   # what is there now
        dns.fail_next("POST", 503)             # fault injection
"""

import ipaddress
import secrets
import threading
import time
from dataclasses import dataclass
from typing import Any

from aiohttp import web

from tests.fakes.loopback import LoopbackServer, bearer

ZONE_NAME = "localhost"
MAX_PER_PAGE = 5000
RECORD_TYPES = ("A", "AAAA", "CNAME", "TXT")


@dataclass
class Recorded:
    method: str
    path: str
    query: dict[str, str]
    body: Any
    status: int


def envelope(result: Any, status: int = 200, **extra: Any) -> web.Response:
    body = {"success": True, "errors": [], "messages": [], "result": result, **extra}
    return web.json_response(body, status=status)


def failure(status: int, code: int, message: str) -> web.Response:
    body = {"success": False, "errors": [{"code": code, "message": message}], "messages": []}
    return web.json_response(body, status=status, content_type="application/json")


def _now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S.000000Z", time.gmtime())


class FakeCloudflareDns(LoopbackServer):
    name = "cloudflare-dns"

    def __init__(self) -> None:
        super().__init__()
        self.token = secrets.token_urlsafe(30)
        self.zone_id = secrets.token_hex(16)
        self.records: dict[str, dict[str, Any]] = {}
        self.requests: list[Recorded] = []
        self._faults: dict[str, list[tuple[int, int, str]]] = {}
        self._lock = threading.Lock()

    @property
    def url(self) -> str:
        """The base URL, as SAM_CLOUDFLARE_API_URL takes it."""
        return f"http://127.0.0.1:{self.port}/client/v4"

    def vars(self) -> dict[str, str]:
        return {
            "SAM_CLOUDFLARE_API_URL": self.url,
            "SAM_CLOUDFLARE_API_TOKEN": self.token,
            "SAM_CLOUDFLARE_ZONE_ID": self.zone_id,
        }

    def records_named(self, name: str) -> list[dict[str, Any]]:
        with self._lock:
            return [dict(r) for r in self.records.values() if r["name"] == name]

    def fail_next(
        self,
        method: str,
        status: int,
        code: int = 10001,
        message: str = "service error",
        times: int = 1,
    ) -> None:
        with self._lock:
            self._faults.setdefault(method.upper(), []).extend([(status, code, message)] * times)

    async def handle(self, request: web.Request) -> web.StreamResponse:
        body = await request.json() if request.can_read_body else None
        response = await self._answer(request, body)
        with self._lock:
            self.requests.append(
                Recorded(request.method, request.path, dict(request.query), body, response.status)
            )
        return response

    async def _answer(self, request: web.Request, body: Any) -> web.Response:
        if bearer(request) != self.token:
            return failure(403, 10000, "Authentication error")
        parts = request.path.removeprefix("/client/v4/").split("/")
        if len(parts) < 3 or parts[0] != "zones" or parts[2] != "dns_records":
            return failure(404, 7000, "No route for that URI")
        if parts[1] != self.zone_id:
            return failure(
                400,
                7003,
                "Could not route to /zones/..., perhaps your object identifier is invalid?",
            )
        with self._lock:
            queued = self._faults.get(request.method)
            fault = queued.pop(0) if queued else None
        if fault is not None:
            return failure(*fault)
        record_id = parts[3] if len(parts) > 3 else None
        with self._lock:
            if record_id is None and request.method == "GET":
                return self._list(request)
            if record_id is None and request.method == "POST":
                return self._create(body)
            if record_id is not None and request.method in ("PATCH", "PUT"):
                return self._update(record_id, body)
            if record_id is not None and request.method == "DELETE":
                if self.records.pop(record_id, None) is None:
                    return failure(404, 81044, "Record does not exist.")
                return envelope({"id": record_id})
            if record_id is not None and request.method == "GET":
                record = self.records.get(record_id)
                return envelope(record) if record else failure(404, 81044, "Record does not exist.")
        return failure(405, 10405, "Method not allowed")

    def _list(self, request: web.Request) -> web.Response:
        query = request.query
        found = [
            r
            for r in self.records.values()
            if all(query.get(field) in (None, r[field]) for field in ("name", "type", "content"))
        ]
        per_page = min(MAX_PER_PAGE, int(query.get("per_page", "100")))
        page = max(1, int(query.get("page", "1")))
        chunk = found[(page - 1) * per_page : page * per_page]
        info = {
            "page": page,
            "per_page": per_page,
            "count": len(chunk),
            "total_count": len(found),
            "total_pages": max(1, -(-len(found) // per_page)),
        }
        return envelope(chunk, result_info=info)

    def _create(self, body: Any) -> web.Response:
        if not isinstance(body, dict) or body.get("type") not in RECORD_TYPES:
            return failure(400, 9006, "DNS record type is invalid.")
        if not isinstance(body.get("name"), str) or not body["name"]:
            return failure(400, 9007, "DNS record name is invalid.")
        problem = _content_problem(body["type"], body.get("content"))
        if problem:
            return failure(400, 9005, problem)
        for record in self.records.values():
            if (record["name"], record["type"], record["content"]) == (
                body["name"],
                body["type"],
                body["content"],
            ):
                return failure(400, 81058, "An identical record already exists.")
        record_id = secrets.token_hex(16)
        record = {
            "id": record_id,
            "zone_id": self.zone_id,
            "zone_name": ZONE_NAME,
            "name": body["name"],
            "type": body["type"],
            "content": body["content"],
            "proxiable": True,
            "proxied": bool(body.get("proxied", False)),
            "ttl": int(body.get("ttl", 1)),
            "settings": {},
            "meta": {},
            "comment": body.get("comment"),
            "tags": body.get("tags", []),
            "created_on": _now(),
            "modified_on": _now(),
        }
        self.records[record_id] = record
        return envelope(record)

    def _update(self, record_id: str, body: Any) -> web.Response:
        record = self.records.get(record_id)
        if record is None:
            return failure(404, 81044, "Record does not exist.")
        if not isinstance(body, dict):
            return failure(400, 9207, "Request body is invalid.")
        if "content" in body:
            problem = _content_problem(record["type"], body["content"])
            if problem:
                return failure(400, 9005, problem)
        record.update(
            {k: v for k, v in body.items() if k in ("content", "proxied", "ttl", "comment")},
            modified_on=_now(),
        )
        return envelope(record)


def _content_problem(kind: str, content: Any) -> str | None:
    if not isinstance(content, str):
        return "Content for A record is invalid. Must be a valid IPv4 address"
    if kind == "A":
        try:
            ipaddress.IPv4Address(content)
        except ValueError:
            return "Content for A record is invalid. Must be a valid IPv4 address"
    return None
