"""Which part of SAM a Host header names; shared by Cloudflare and the local edge.

app.{domain}          the SPA, and /api/* → the API (same origin, so cookies work)
api.{domain}          the API
ws-{id}.{domain}      a workspace's node agent
anything else         nothing
"""

import re
from dataclasses import dataclass
from enum import StrEnum

WORKSPACE_ID = re.compile(r"[a-z0-9][a-z0-9-]{0,62}")


class Surface(StrEnum):
    APP = "app"
    API = "api"
    WORKSPACE = "workspace"
    UNKNOWN = "unknown"


@dataclass(frozen=True)
class Destination:
    surface: Surface
    workspace_id: str | None = None


def resolve(host: str, domain: str) -> Destination:
    host = host.strip().lower().rstrip(".")
    suffix = "." + domain
    if not host.endswith(suffix):
        return Destination(Surface.UNKNOWN)
    label = host[: -len(suffix)]
    if label == "app":
        return Destination(Surface.APP)
    if label == "api":
        return Destination(Surface.API)
    if label.startswith("ws-") and WORKSPACE_ID.fullmatch(label[3:]):
        return Destination(Surface.WORKSPACE, label[3:])
    return Destination(Surface.UNKNOWN)
