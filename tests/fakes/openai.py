"""OpenAI's `GET /v1/models` on loopback, as SAM calls it to check a key before saving it.

    with OpenAiModels(keys={"sk-proj-good"}) as openai: ... openai.url ...

A key in `keys` (as `Authorization: Bearer`; any key when `keys` is None) gets the model
list; any other gets OpenAI's 401 body (`invalid_api_key`). Every request's key is
recorded in `seen_keys`.
"""

from aiohttp import web

from tests.fakes.loopback import LoopbackServer

MODEL = "gpt-4o"


class OpenAiModels(LoopbackServer):
    name = "openai"

    def __init__(self, keys: set[str] | None = None) -> None:
        super().__init__()
        self.keys = keys
        self.seen_keys: list[str] = []

    def routes(self, app: web.Application) -> None:
        app.router.add_get("/v1/models", self.models)

    async def models(self, request: web.Request) -> web.Response:
        _, _, key = request.headers.get("Authorization", "").partition(" ")
        self.seen_keys.append(key)
        if self.keys is not None and key not in self.keys:
            error = {
                "message": "Incorrect API key provided. You can find your API key at "
                "https://platform.openai.com/account/api-keys.",
                "type": "invalid_request_error",
                "param": None,
                "code": "invalid_api_key",
            }
            return web.json_response({"error": error}, status=401)
        model = {"id": MODEL, "object": "model", "created": 1715367049, "owned_by": "system"}
        return web.json_response({"object": "list", "data": [model]})
