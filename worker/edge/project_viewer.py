"""`GET /api/projects/{id}/ws?chat=C&after=N`: a project chat's viewer WebSocket.

    app.{domain} or api.{domain} ─▶ here ─▶ the project's ProjectData `fetch` ─▶ 101

The checks, in order, each a domain error the edge answers as JSON before any socket opens:
    1. a WebSocket upgrade                                                          400
    2. who: `Authorization: Bearer sam_pat_…` (an API token), or the session cookie,
       which counts only with the app's Origin (a page elsewhere never gets a socket) 401 / 403
    3. the project is the caller's (anyone else's is the same 404 as a made-up id) 404
    4. `chat` a chat id, `after` a seq (0 or more)                                  400
Then the object gets `/viewer?project=P&chat=C&after=N` and nothing of the caller's
(no cookie, no token); it answers the 101 whose socket the edge hands to the client.
"""

import logging
import re
from urllib.parse import parse_qsl, urlsplit

from wire.chat import ID_PATTERN
from worker.auth import callers, sessions
from worker.auth.users import User
from worker.deployment import Deployment
from worker.edge.proxy import request_cookie
from worker.errors import Forbidden, InvalidInput
from worker.logs import event
from worker.platform import Request, Response
from worker.projects import store

log = logging.getLogger("sam.edge.project_viewer")

PATH = re.compile(r"^/api/projects/(?P<project>[^/]+)/ws$")
_ID = re.compile(ID_PATTERN)
VIEWER_URL = "https://project-data/viewer"


def project_of(path: str) -> str | None:
    """The project id, if `path` is a viewer socket's."""
    match = PATH.match(path)
    return match["project"] if match else None


async def handle(request: Request, deployment: Deployment, project_id: str) -> Response:
    if request.headers.get("upgrade", "").lower() != "websocket":
        raise InvalidInput(
            "websocket_required",
            f"/api/projects/{project_id}/ws is a WebSocket: connect with one (Upgrade: "
            "websocket); read a chat over HTTP with GET …/chats/{chat}/messages.",
        )
    url = urlsplit(request.url)
    user = await _caller(request, deployment, f"{url.scheme}://app.{deployment.config.domain}")
    project = await store.get(deployment, user.id, project_id)
    query = dict(parse_qsl(url.query))
    chat_id, after = query.get("chat"), query.get("after", "0")
    if chat_id is not None and not _ID.match(chat_id):
        raise InvalidInput("invalid_chat_id", f"{chat_id[:80]!r} is not a chat id.")
    if not after.isdigit() or len(after) > 18:
        raise InvalidInput(
            "invalid_after", "after must be the seq of the last message you have (0 or more)."
        )
    forwarded = f"{VIEWER_URL}?project={project.id}&after={int(after)}"
    if chat_id is not None:
        forwarded += f"&chat={chat_id}"
    stub = deployment.env.PROJECT_DATA.getByName(project.id)
    response = await stub.fetch(Request(forwarded, headers={"upgrade": "websocket"}))
    event(log, "project.viewer", project_id=project.id, chat=chat_id or "-", status=response.status)
    return response


async def _caller(request: Request, deployment: Deployment, app_origin: str) -> User:
    def check_origin() -> None:
        if request.headers.get("origin") != app_origin:
            raise Forbidden(
                "forbidden_origin",
                f"A chat viewer with a session cookie must come from {app_origin}; "
                "scripts use an API token (Authorization: Bearer sam_pat_...).",
            )

    caller = await callers.authenticate(
        deployment,
        request.headers.get("authorization"),
        request_cookie(request, sessions.SESSION_COOKIE),
        app_origin,
        check_origin,
    )
    return caller.user
