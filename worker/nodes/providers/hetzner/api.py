"""The Hetzner Cloud REST API, async through the runtime's fetch.

The `hcloud` library is synchronous and cannot run in a Worker, so this speaks the REST API
(https://docs.hetzner.cloud) directly: `Authorization: Bearer <the user's token>`, JSON
bodies, errors as `{"error": {"code", "message", "details"}}`, lists paginated with
`meta.pagination.next_page`. 429 and 5xx are retried (worker/http_retry.py).

    api = HetznerApi(base_url, token)
    await api.call(method, path, query=None, body=None) -> the JSON answer (a dict)
    await api.paged(path, key, query=None)              -> every item of every page
    HetznerRefused                                      a non-2xx answer: a domain error for
                                                        the user; .hetzner_status/_code
"""

import json
from typing import Any
from urllib.parse import urlencode

from worker.errors import Conflict, InvalidInput, SamError, Unavailable, UpstreamFailed
from worker.http_retry import RetryPolicy, Sleep, Unreachable, send_with_retry
from worker.platform import fetch

HETZNER_RETRY = RetryPolicy(attempts=5, base_delay_seconds=1.0, max_delay_seconds=16.0)
PER_PAGE = 50  # Hetzner's maximum
MAX_PAGES = 100  # 5,000 items: far more servers than any project holds; stops a loop


class HetznerRefused(SamError):
    """Hetzner answered with an error (after retries, for 429 and 5xx): a domain error that
    says what the user should do, with Hetzner's own status and code kept for callers.
    Raised as one of the kinds below, made by `refused`."""

    def __init__(self, code: str, message: str, hetzner_status: int, hetzner_code: str) -> None:
        super().__init__(code, message)
        self.hetzner_status = hetzner_status
        self.hetzner_code = hetzner_code


class HetznerTokenRefused(HetznerRefused, InvalidInput):
    pass


class HetznerLimitReached(HetznerRefused, Conflict):
    pass


class HetznerRateLimited(HetznerRefused, Unavailable):
    pass


class HetznerFailed(HetznerRefused, UpstreamFailed):
    pass


def refused(status: int, code: str, message: str, what: str) -> HetznerRefused:
    said = f"{code}: {message}"
    if status == 401:
        return HetznerTokenRefused(
            "hetzner_token_rejected",
            "Hetzner Cloud rejected your API token. Replace it in Settings → Credentials "
            "with a token of your Hetzner project (Read & Write).",
            status,
            code,
        )
    if code in ("token_readonly", "forbidden"):
        return HetznerTokenRefused(
            "hetzner_token_forbidden",
            f"Your Hetzner API token may not do this ({said}). Create a Read & Write "
            "token in the Hetzner Console and replace the one in Settings → Credentials.",
            status,
            code,
        )
    if code == "resource_limit_exceeded":
        return HetznerLimitReached(
            "hetzner_limit_reached",
            f"Your Hetzner project has reached a limit ({said}). Delete unused servers "
            "or ask Hetzner to raise the limit.",
            status,
            code,
        )
    if status == 429:
        return HetznerRateLimited(
            "hetzner_rate_limited",
            "Hetzner Cloud kept rate-limiting this project's API token. Try again in a minute.",
            status,
            code,
        )
    if status >= 500:
        return HetznerFailed(
            "hetzner_unavailable",
            f"Hetzner Cloud kept failing ({status}, {said}) for {what}, after "
            f"{HETZNER_RETRY.attempts} attempts. Try again later.",
            status,
            code,
        )
    return HetznerFailed(
        "hetzner_error", f"Hetzner Cloud refused {what} ({status}, {said}).", status, code
    )


class HetznerApi:
    def __init__(self, base_url: str, token: str, sleep: Sleep | None = None) -> None:
        self._base = base_url.rstrip("/") + "/v1"
        self._token = token
        self._sleep = sleep

    def __repr__(self) -> str:  # never the token
        return f"HetznerApi({self._base!r})"

    async def call(
        self,
        method: str,
        path: str,
        query: dict[str, Any] | None = None,
        body: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        url = self._base + path + (f"?{urlencode(query)}" if query else "")
        headers = {"Authorization": f"Bearer {self._token}", "Accept": "application/json"}
        init: dict[str, Any] = {"method": method, "headers": headers}
        if body is not None:
            headers["Content-Type"] = "application/json"
            init["body"] = json.dumps(body)
        what = f"{method} /v1{path}"
        extra = {} if self._sleep is None else {"sleep": self._sleep}
        try:
            response = await send_with_retry(
                lambda: fetch(url, **init), HETZNER_RETRY, what=f"hetzner {what}", **extra
            )
        except Unreachable as exc:
            raise UpstreamFailed(
                "hetzner_unreachable",
                f"Could not reach the Hetzner Cloud API at {self._base} ({exc.reason}). "
                "Try again in a minute.",
            ) from exc
        text = await response.text()
        try:
            answer = json.loads(text) if text else {}
        except ValueError:
            answer = {}
        if not isinstance(answer, dict):
            answer = {}
        if 200 <= response.status < 300:
            return answer
        error = answer.get("error") if isinstance(answer.get("error"), dict) else {}
        raise refused(
            response.status,
            str(error.get("code") or "unknown"),
            str(error.get("message") or "no message"),
            what,
        )

    async def paged(
        self, path: str, key: str, query: dict[str, Any] | None = None
    ) -> list[dict[str, Any]]:
        items: list[dict[str, Any]] = []
        page: int | None = 1
        for _ in range(MAX_PAGES):
            if page is None:
                break
            answer = await self.call(
                "GET", path, {**(query or {}), "page": page, "per_page": PER_PAGE}
            )
            items.extend(answer.get(key) or [])
            pagination = (answer.get("meta") or {}).get("pagination") or {}
            page = pagination.get("next_page")
        return items
