"""The baselines of the HTTP benchmarks: bare Starlette JSON endpoints under uvicorn.

GET /health           {"status": "ok", ...}               (bench_edge.py)
GET /api/workspaces   the JSON in the file $SAM_BENCH_LISTING, serialised per request,
                      without any auth or storage          (bench_control_plane.py)
"""

import json
import os
from pathlib import Path
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

LISTING_VAR = "SAM_BENCH_LISTING"


def _listing() -> Any:
    path = os.environ.get(LISTING_VAR)
    return json.loads(Path(path).read_text()) if path else {"workspaces": []}


LISTING = _listing()


async def health(request: Request) -> JSONResponse:
    return JSONResponse({"status": "ok", "version": "0.1.0"})


async def workspaces(request: Request) -> JSONResponse:
    return JSONResponse(LISTING)


app = Starlette(routes=[Route("/health", health), Route("/api/workspaces", workspaces)])
