"""A browser signing in with GitHub through the local edge and the loopback GitHub.

Cookies are handled by hand (not by httpx's jar, which keys them by 127.0.0.1 rather than
by the Host header) so that each test says exactly what a browser would send.
"""

from http.cookies import SimpleCookie
from urllib.parse import parse_qs, urlsplit

import httpx

from tests.fakes.github import FakeGitHub
from tests.support.edge import Edge

LOGIN = "/api/auth/github/login"
CALLBACK = "/api/auth/github/callback"


class Browser:
    """One browser's cookie store for the app host, and requests as that browser sends them."""

    def __init__(self, edge: Edge, scheme: str = "http") -> None:
        self.edge = edge
        self.scheme = scheme
        self.cookies: dict[str, str] = {}
        self.origin = f"{scheme}://{edge.host('app')}"

    def request(
        self, method: str, path: str, host: str = "app", origin: bool = True, **kwargs: object
    ) -> httpx.Response:
        headers: dict[str, str] = dict(kwargs.pop("headers", {}) or {})  # type: ignore[arg-type]
        if self.cookies:
            headers["cookie"] = "; ".join(f"{k}={v}" for k, v in self.cookies.items())
        if origin and method not in ("GET", "HEAD"):
            headers.setdefault("origin", self.origin)
        if self.scheme == "https":
            # uvicorn trusts X-Forwarded-Proto from loopback: the request reads as https.
            headers["x-forwarded-proto"] = "https"
        with self.edge.client(host) as client:
            response = client.request(method, path, headers=headers, **kwargs)  # type: ignore[arg-type]
        for name, morsel in set_cookies(response).items():
            if morsel["max-age"] == "0" or morsel.value in ("", '""'):
                self.cookies.pop(name, None)
            else:
                self.cookies[name] = morsel.value
        return response

    def get(self, path: str, **kwargs: object) -> httpx.Response:
        return self.request("GET", path, **kwargs)

    def post(self, path: str, **kwargs: object) -> httpx.Response:
        return self.request("POST", path, **kwargs)

    def start_login(self) -> dict[str, str]:
        """GET the login route; returns the authorize URL's query."""
        response = self.get(LOGIN)
        assert response.status_code == 302, response.text
        return {k: v[0] for k, v in parse_qs(urlsplit(response.headers["location"]).query).items()}

    def approve(self, github: FakeGitHub, query: dict[str, str], login: str) -> dict[str, str]:
        """The user approves at GitHub; returns the callback's query (code, state)."""
        reply = httpx.get(f"{github.url}/login/oauth/authorize", params={**query, "login": login})
        assert reply.status_code == 302, reply.text
        location = urlsplit(reply.headers["location"])
        assert f"{location.scheme}://{location.netloc}{location.path}" == self.origin + CALLBACK
        return {k: v[0] for k, v in parse_qs(location.query).items()}

    def callback(self, params: dict[str, str]) -> httpx.Response:
        return self.get(CALLBACK, params=params)

    def sign_in(self, github: FakeGitHub, login: str) -> dict[str, object]:
        response = self.callback(self.approve(github, self.start_login(), login))
        assert response.status_code == 302, response.text
        assert response.headers["location"] == self.origin + "/"
        me = self.get("/api/auth/me")
        assert me.status_code == 200, me.text
        return me.json()


def set_cookies(response: httpx.Response) -> dict[str, SimpleCookie]:
    found = {}
    for header in response.headers.get_list("set-cookie"):
        cookie: SimpleCookie = SimpleCookie()
        cookie.load(header)
        for name, morsel in cookie.items():
            found[name] = morsel
    return found
