"""A loopback Cloudflare API: DNS records (`/client/v4/zones/{zone}/dns_records`) and
Origin CA certificates (`/client/v4/certificates`).

Real wire format: every answer is Cloudflare's envelope `{"success", "errors",
"messages", "result"}` (lists add `result_info`), records have Cloudflare's fields, and
the errors carry Cloudflare's codes: 10000 (authentication), 7003 (no such zone), 81044
(no such record), 81058 (an identical record exists), 9005/9006 (bad content/type),
1010 (a CSR that does not parse). Its Origin CA is a root of its own (`origin_ca_root`):
certificates are issued for the `hostnames` asked, over the CSR's key, as Cloudflare's are.

    with FakeCloudflareDns() as dns:
        vars = {"SAM_CLOUDFLARE_API_URL": dns.url, "SAM_CLOUDFLARE_API_TOKEN": dns.token,
                "SAM_CLOUDFLARE_ZONE_ID": dns.zone_id}
        dns.records_named("vm-n1.localhost")   # what is there now
        dns.fail_next("POST", 503)             # fault injection
        dns.origin_ca_root(directory)          # the root's PEM file, for a trusting edge
        dns.live_certificates("vm-n1.localhost")
"""

import datetime
import ipaddress
import secrets
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from aiohttp import web
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

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
        self.certificates: dict[str, dict[str, Any]] = {}
        # A token without Zone → SSL and Certificates → Edit: /certificates answers 403.
        self.certificates_forbidden = False
        self._ca_key = ec.generate_private_key(ec.SECP256R1())
        self._ca_cert = _self_signed(self._ca_key, "Cloudflare Origin CA (loopback double)")

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

    def origin_ca_root(self, directory: Path) -> Path:
        """The Origin CA's root certificate as a PEM file in `directory`."""
        path = directory / "cloudflare-origin-ca.pem"
        path.write_bytes(self._ca_cert.public_bytes(serialization.Encoding.PEM))
        return path

    def live_certificates(self, hostname: str) -> list[dict[str, Any]]:
        with self._lock:
            return [
                dict(c)
                for c in self.certificates.values()
                if c["hostnames"] == [hostname] and not c["revoked_at"]
            ]

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
        if parts[0] == "certificates":
            if self.certificates_forbidden:
                return failure(403, 10000, "Authentication error")
            with self._lock:
                queued = self._faults.get(request.method)
                fault = queued.pop(0) if queued else None
                if fault is not None:
                    return failure(*fault)
                return self._certificate_call(request, parts[1] if len(parts) > 1 else None, body)
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

    # --- Origin CA ---------------------------------------------------------------------

    def _certificate_call(
        self, request: web.Request, certificate_id: str | None, body: Any
    ) -> web.Response:
        if certificate_id is None and request.method == "POST":
            return self._issue(body)
        if certificate_id is None and request.method == "GET":
            if request.query.get("zone_id") != self.zone_id:
                return failure(400, 1001, "zone_id is required and must be a zone you own")
            per_page = int(request.query.get("per_page", "20"))
            page = max(1, int(request.query.get("page", "1")))
            found = list(self.certificates.values())[(page - 1) * per_page : page * per_page]
            return envelope([{k: v for k, v in c.items() if k != "csr"} for c in found])
        if certificate_id is not None and request.method == "DELETE":
            certificate = self.certificates.get(certificate_id)
            if certificate is None:
                return failure(404, 1005, "Certificate not found")
            certificate["revoked_at"] = _now()
            return envelope({"id": certificate_id, "revoked_at": certificate["revoked_at"]})
        return failure(405, 10405, "Method not allowed")

    def _issue(self, body: Any) -> web.Response:
        if not isinstance(body, dict) or not isinstance(body.get("hostnames"), list):
            return failure(400, 1006, "hostnames is required")
        if body.get("request_type") not in ("origin-rsa", "origin-ecc"):
            return failure(400, 1007, "request_type must be origin-rsa or origin-ecc")
        try:
            csr = x509.load_pem_x509_csr(str(body.get("csr", "")).encode())
        except ValueError:
            return failure(400, 1010, "Failed to read certificate signing request")
        if not csr.is_signature_valid:
            return failure(400, 1010, "The CSR's signature is invalid")
        days = int(body.get("requested_validity", 5475))
        now = datetime.datetime.now(datetime.UTC)
        certificate = (
            x509.CertificateBuilder()
            .subject_name(
                x509.Name(
                    [x509.NameAttribute(NameOID.COMMON_NAME, "CloudFlare Origin Certificate")]
                )
            )
            .issuer_name(self._ca_cert.subject)
            .public_key(csr.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(days=days))
            .add_extension(
                x509.SubjectAlternativeName([x509.DNSName(h) for h in body["hostnames"]]), False
            )
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .sign(self._ca_key, hashes.SHA256())
        )
        certificate_id = str(x509.random_serial_number())
        stored = {
            "id": certificate_id,
            "certificate": certificate.public_bytes(serialization.Encoding.PEM).decode(),
            "hostnames": list(body["hostnames"]),
            "expires_on": certificate.not_valid_after_utc.strftime("%Y-%m-%d %H:%M:%S +0000 UTC"),
            "request_type": body["request_type"],
            "requested_validity": days,
            "csr": body["csr"],
            "revoked_at": None,
        }
        self.certificates[certificate_id] = stored
        return envelope({k: v for k, v in stored.items() if k != "revoked_at"})


def _self_signed(key: ec.EllipticCurvePrivateKey, name: str) -> x509.Certificate:
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = datetime.datetime.now(datetime.UTC)
    return (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=3650))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .sign(key, hashes.SHA256())
    )


def _content_problem(kind: str, content: Any) -> str | None:
    if not isinstance(content, str):
        return "Content for A record is invalid. Must be a valid IPv4 address"
    if kind == "A":
        try:
            ipaddress.IPv4Address(content)
        except ValueError:
            return "Content for A record is invalid. Must be a valid IPv4 address"
    return None
