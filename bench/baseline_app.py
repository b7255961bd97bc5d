"""The baseline for the edge benchmark: a bare Starlette JSON endpoint under uvicorn."""

from starlette.applications import Starlette
from starlette.responses import JSONResponse
from starlette.routing import Route


async def health(request: object) -> JSONResponse:
    return JSONResponse({"status": "ok", "version": "0.1.0"})


app = Starlette(routes=[Route("/health", health)])
