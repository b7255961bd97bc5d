"""One user's browser on the app host: its cookies, kept by hand, and the two ways in.

Cookies are kept here rather than in httpx's jar, which would key them by 127.0.0.1
instead of the Host header; every state-changing request carries the app's Origin, as a
browser's same-origin `fetch` does.
"""

from http.cookies import SimpleCookie
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx

from tests.fakes.github import FakeGitHub
from tests.support.edge import Edge

REQUEST_TIMEOUT_SECONDS = 60.0  # creating a workspace may wait on a provider


class Browser:
    def __init__(self, edge: Edge) -> None:
        self.edge = edge
        self.origin = f"http://{edge.host('app')}"
        self.cookies: dict[str, str] = {}

    def request(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        headers = dict(kwargs.pop("headers", None) or {})
        if self.cookies:
            headers["cookie"] = "; ".join(f"{k}={v}" for k, v in self.cookies.items())
        if method not in ("GET", "HEAD"):
            headers.setdefault("origin", self.origin)
        with self.edge.client("app") as client:
            client.timeout = httpx.Timeout(REQUEST_TIMEOUT_SECONDS)
            response = client.request(method, path, headers=headers, **kwargs)
        for header in response.headers.get_list("set-cookie"):
            jar: SimpleCookie = SimpleCookie()
            jar.load(header)
            for name, morsel in jar.items():
                if morsel["max-age"] == "0" or morsel.value in ("", '""'):
                    self.cookies.pop(name, None)
                else:
                    self.cookies[name] = morsel.value
        return response

    def get(self, path: str, **kwargs: Any) -> httpx.Response:
        return self.request("GET", path, **kwargs)

    def post(self, path: str, **kwargs: Any) -> httpx.Response:
        return self.request("POST", path, **kwargs)

    @property
    def session(self) -> str:
        return self.cookies["sam_session"]

    def dev_login(self, login: str) -> dict[str, Any]:
        signed_in = self.post("/api/auth/dev-login", json={"login": login})
        assert signed_in.status_code == 200, signed_in.text
        return self.me()

    def github_login(self, github: FakeGitHub, login: str) -> dict[str, Any]:
        """The OAuth web flow: SAM → GitHub's authorize page (approved) → SAM's callback."""
        started = self.get("/api/auth/github/login")
        assert started.status_code == 302, started.text
        query = {k: v[0] for k, v in parse_qs(urlsplit(started.headers["location"]).query).items()}
        assert query["code_challenge_method"] == "S256" and query["state"]
        approved = httpx.get(
            f"{github.url}/login/oauth/authorize", params={**query, "login": login}
        )
        assert approved.status_code == 302, approved.text
        back = urlsplit(approved.headers["location"])
        callback = self.get(back.path, params={k: v[0] for k, v in parse_qs(back.query).items()})
        assert callback.status_code == 302, callback.text
        return self.me()

    def me(self) -> dict[str, Any]:
        me = self.get("/api/auth/me")
        assert me.status_code == 200, me.text
        return me.json()
