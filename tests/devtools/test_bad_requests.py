"""Requests no client should send, on every host of the local edge: each is a clean 4xx
`{"error", "message"}` (never a 500), and the edge keeps serving afterwards."""

import contextlib
import socket
import time

import httpx
import pytest

from tests.support.edge import Edge
from twin.http_protocol import HEADER_TIMEOUT_SECONDS, MAX_REQUEST_HEADER_BYTES

HOSTS = ("app", "api", "ws-abc")
EIGHT_MB = 8 * 1024 * 1024
SOCKET_TIMEOUT_SECONDS = 20.0


def is_error(response: httpx.Response, status: int, code: str) -> None:
    assert response.status_code == status, response.text
    assert response.json()["error"] == code
    assert response.json()["message"]


def raw_request(edge: Edge, head: bytes) -> bytes:
    """Send `head` as is and read the whole answer (the edge closes after an error)."""
    with socket.create_connection(("127.0.0.1", edge.port)) as sock:
        sock.settimeout(SOCKET_TIMEOUT_SECONDS)
        with contextlib.suppress(ConnectionResetError):  # refused before it was all sent
            sock.sendall(head)
        answer = b""
        with contextlib.suppress(ConnectionResetError):
            while chunk := sock.recv(65536):
                answer += chunk
    return answer


def still_serving(edge: Edge) -> None:
    with edge.client() as client:
        assert client.get("/health").status_code == 200


@pytest.mark.parametrize("host", HOSTS)
def test_an_unknown_method_is_405_with_allow(edge: Edge, host: str) -> None:
    with edge.client(host) as client:
        for path in ("/", "/api/auth/me", "/health", "/nowhere"):
            response = client.request("PROPFIND", path)
            is_error(response, 405, "method_not_allowed")
            assert "PROPFIND" in response.json()["message"]
            assert "GET" in response.headers["allow"].split(", ")


@pytest.mark.parametrize(
    "path", ["/foo%00bar", "/assets/x%00.js", "/" + "a" * 256, "/assets/" + "b" * 300 + ".js"]
)
def test_an_app_path_no_file_could_have_is_400(edge: Edge, path: str) -> None:
    with edge.client("app") as client:
        is_error(client.get(path), 400, "invalid_path")


@pytest.mark.parametrize(
    "cookie",
    [b"sam_session", b"=", b";;;", b'sam_session="\\x', b"\xc3\xa9=\xc3\xa9", b"a\x7fb=c", b"\xff"],
)
def test_a_malformed_cookie_is_never_a_500(edge: Edge, cookie: bytes) -> None:
    for host in HOSTS:
        head = f"GET /api/auth/me HTTP/1.1\r\nHost: {edge.host(host)}\r\n".encode()
        answer = raw_request(edge, head + b"Cookie: " + cookie + b"\r\nConnection: close\r\n\r\n")
        status = int(answer.split(b" ", 2)[1])
        assert 400 <= status < 500, answer[:300]
        assert b"application/json" in answer.split(b"\r\n\r\n", 1)[0].lower()


def test_headers_over_the_limit_are_431_with_json(edge: Edge) -> None:
    big = b"x" * (MAX_REQUEST_HEADER_BYTES + 1)
    head = f"GET /health HTTP/1.1\r\nHost: {edge.host('api')}\r\nX-Big: ".encode()
    answer = raw_request(edge, head + big + b"\r\n\r\n")
    assert answer.startswith(b"HTTP/1.1 431"), answer[:200]
    assert b'"error": "headers_too_large"' in answer
    # 8 MB: refused (the edge may close before reading it all), never served.
    answer = raw_request(edge, head + b"x" * EIGHT_MB + b"\r\n\r\n")
    assert not answer.startswith(b"HTTP/1.1 200")
    still_serving(edge)


def test_headers_that_never_finish_are_cut_off(edge: Edge) -> None:
    with socket.create_connection(("127.0.0.1", edge.port)) as sock:
        sock.settimeout(HEADER_TIMEOUT_SECONDS + SOCKET_TIMEOUT_SECONDS)
        sock.sendall(f"GET /health HTTP/1.1\r\nHost: {edge.host('api')}\r\n".encode())
        started = time.monotonic()
        assert sock.recv(1024) == b""  # closed by the edge, not answered
        assert time.monotonic() - started < HEADER_TIMEOUT_SECONDS + 2
    still_serving(edge)
