"""The API: a FastAPI app with the ASGI layers of `worker.api.middleware` around it.

Every error leaves as `{"error": code, "message": text}`: domain errors (`SamError`)
mapped by worker/http_errors.py, the framework's own 404/405, validation failures as
400, and crashes as a logged 500 (ApiBoundary).
"""

from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException

from wire.version import VERSION
from worker.api.middleware import ApiBoundary, BodyLimit, Cors
from worker.api.routes import (
    admin,
    agent_artifact,
    auth,
    bootstrap,
    chats,
    credentials,
    deployment_info,
    errors,
    github,
    jwks,
    nodes,
    projects,
    tasks,
    terminal_tokens,
    tokens,
    workspace_secrets,
    workspaces,
)
from worker.deployment import Deployment
from worker.errors import InvalidInput, SamError
from worker.http_errors import code_for, error_body, error_reply


async def domain_error(_: Request, exc: SamError) -> JSONResponse:
    status, body, headers = error_reply(exc)
    return JSONResponse(body, status, headers=headers)


async def _http_error(request: Request, exc: HTTPException) -> JSONResponse:
    if exc.status_code == 404:
        message = f"No API route matches {request.url.path}."
    elif exc.status_code == 405:
        message = f"{request.method} is not allowed on {request.url.path}."
    else:
        message = str(exc.detail)
    return JSONResponse(
        error_body(code_for(exc.status_code), message), exc.status_code, headers=exc.headers
    )


async def _invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
    problems = exc.errors()
    if any(problem.get("type") == "json_invalid" for problem in problems):
        return await domain_error(
            request, InvalidInput("malformed_json", "The request body is not valid JSON.")
        )
    details = "; ".join(
        f"{'.'.join(str(part) for part in problem['loc'])}: {problem['msg']}"
        for problem in problems
    )
    invalid = InvalidInput("invalid_request", details or "The request is invalid.")
    return await domain_error(request, invalid)


def create_api() -> Any:
    api = FastAPI(
        title="SAM",
        version=VERSION,
        docs_url="/api/docs",
        openapi_url="/api/openapi.json",
        redoc_url=None,
    )
    api.add_exception_handler(SamError, domain_error)
    api.add_exception_handler(HTTPException, _http_error)
    api.add_exception_handler(RequestValidationError, _invalid)
    # Inside Starlette's own outermost layer, which would answer a crash in plain text.
    api.add_middleware(ApiBoundary)
    api.include_router(errors.router)
    api.include_router(auth.router)
    api.include_router(tokens.router)
    api.include_router(credentials.router)
    api.include_router(jwks.router)
    api.include_router(admin.router)
    api.include_router(nodes.router)
    api.include_router(bootstrap.router)
    api.include_router(agent_artifact.router)
    api.include_router(workspaces.router)
    api.include_router(projects.router)
    api.include_router(workspace_secrets.router)
    api.include_router(deployment_info.router)
    api.include_router(terminal_tokens.router)
    api.include_router(github.router)
    api.include_router(chats.router)
    api.include_router(tasks.router)
    # Cors outermost, so that even a crash's JSON 500 is readable by the app.
    return Cors(BodyLimit(api))


api = create_api()


def serving(deployment: Deployment) -> Any:
    """The API as an ASGI app for one request, with that request's deployment in its scope
    (read by the middleware and by `worker.api.deps.get_deployment`)."""

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        await api({**scope, "deployment": deployment}, receive, send)

    return app
