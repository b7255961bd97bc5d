"""A main module that imports only the Worker's vendored packages (the SDK included)."""

import asgi  # noqa: F401
import fastapi  # noqa: F401
import pydantic  # noqa: F401
import workers  # noqa: F401
