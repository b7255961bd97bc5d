"""FastAPI dependencies shared by the routes."""

from typing import Any

from fastapi import Request


def get_env(request: Request) -> Any:
    """The worker's `env`, which the ASGI adapter puts in the scope on both platforms."""
    return request.scope["env"]
