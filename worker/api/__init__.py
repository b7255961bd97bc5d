"""The HTTP API (FastAPI) behind `api.{domain}` and `app.{domain}/api/*`."""
