"""Calls to GitHub's REST API: one request function, its headers, and its failures as
domain errors.

    status, data = await call(url, method=…, headers=…, body=…)   any GitHub URL, raw answer
    data = await api(config, "GET", "/installation/repositories", token=…)
    pages = await api_pages(config, "/user/installations", "installations", token=…)

`api` maps GitHub's refusals once: 404 → GitHubNotFound (a NotFound; the caller says what
was not found), 422 → InvalidInput carrying GitHub's message; and, all UpstreamFailed (a
502): 401 → GitHubRefused, a rate limit (403/429 with no calls left) → GitHubRateLimited
with the reset time, any other 403 → GitHubForbidden, any other status → UpstreamFailed
naming the call and the status.
"""

import asyncio
import json
from typing import Any

from worker.config import Config
from worker.errors import InvalidInput, NotFound, UpstreamFailed
from worker.platform import fetch

GITHUB_TIMEOUT_SECONDS = 10.0
API_VERSION = "2022-11-28"
USER_AGENT = "sam-control-plane"
PER_PAGE = 100  # GitHub's maximum page size
# Listing stops here (1,000 items): a picker has no use for more, and a Worker's
# subrequests per request are bounded (50 on the free plan).
MAX_PAGES = 10


class GitHubNotFound(NotFound):
    pass


class GitHubRefused(UpstreamFailed):
    pass


class GitHubRateLimited(UpstreamFailed):
    pass


class GitHubForbidden(UpstreamFailed):
    pass


def api_headers(token: str) -> dict[str, str]:
    """What every REST call sends; `token` is an app JWT, installation or user token."""
    return {
        "accept": "application/vnd.github+json",
        "authorization": f"Bearer {token}",
        "x-github-api-version": API_VERSION,
        "user-agent": USER_AGENT,
    }


async def call(url: str, **init: Any) -> tuple[int, Any]:
    """(status, parsed JSON or None) of one call to GitHub; 502 when it cannot be reached."""
    status, _, data = await _call(url, **init)
    return status, data


async def _call(url: str, **init: Any) -> tuple[int, Any, Any]:
    try:
        response = await asyncio.wait_for(fetch(url, **init), GITHUB_TIMEOUT_SECONDS)
        text = await response.text()
    except TimeoutError as exc:
        raise UpstreamFailed(
            "github_unavailable", f"GitHub did not answer within {GITHUB_TIMEOUT_SECONDS}s."
        ) from exc
    except Exception as exc:  # the runtimes raise different network errors (aiohttp, JS)
        raise UpstreamFailed(
            "github_unavailable", f"GitHub could not be reached ({type(exc).__name__})."
        ) from exc
    try:
        return response.status, response.headers, json.loads(text)
    except ValueError:
        return response.status, response.headers, None


async def api(
    config: Config,
    method: str,
    path: str,
    *,
    token: str,
    body: dict[str, Any] | None = None,
    expect: tuple[int, ...] = (200,),
) -> Any:
    """The JSON answer of `method path` on GitHub's API, or the domain error for its refusal."""
    headers = api_headers(token)
    init: dict[str, Any] = {"method": method, "headers": headers}
    if body is not None:
        headers["content-type"] = "application/json"
        init["body"] = json.dumps(body)
    status, reply_headers, data = await _call(config.github_api_url + path, **init)
    if status in expect:
        return data
    what = f"GitHub's {method} {path.split('?')[0]}"
    message = data.get("message") if isinstance(data, dict) else None
    said = f" ({message})" if message else ""
    if status == 404:
        raise GitHubNotFound("github_not_found", f"{what} answered 404{said}.")
    if status in (403, 429) and (
        reply_headers.get("x-ratelimit-remaining") == "0" or reply_headers.get("retry-after")
    ):
        reset = reply_headers.get("x-ratelimit-reset") or "soon"
        raise GitHubRateLimited(
            "github_rate_limited",
            f"{what} is rate-limited{said}; GitHub resets the limit at {reset} (epoch seconds). "
            "Try again after that.",
        )
    if status == 401:
        raise GitHubRefused("github_unauthorized", f"GitHub refused the credential{said}.")
    if status == 403:
        raise GitHubForbidden("github_forbidden", f"{what} answered 403{said}.")
    if status == 422:
        raise InvalidInput("github_refused", f"{what} refused the request{said}.")
    raise UpstreamFailed("github_unavailable", f"{what} answered {status}{said}.")


async def api_pages(config: Config, path: str, key: str | None, *, token: str) -> list[Any]:
    """Every item of a paginated list (`key`: the member holding it, None for a bare list)."""
    items: list[Any] = []
    separator = "&" if "?" in path else "?"
    for page in range(1, MAX_PAGES + 1):
        data = await api(
            config, "GET", f"{path}{separator}per_page={PER_PAGE}&page={page}", token=token
        )
        batch = data if key is None else (data or {}).get(key)
        if not isinstance(batch, list):
            raise UpstreamFailed("github_unavailable", f"GitHub's {path} answer is not a list.")
        items.extend(batch)
        if len(batch) < PER_PAGE:
            break
    return items
