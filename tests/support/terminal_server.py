"""A TerminalManager's WebSocket served on a loopback port by a real aiohttp server, as the
agent serves it but without its authentication (tests of the terminal protocol itself).

    runner, base = await serve_terminals(manager)
    ws_url = f"{base}/ws-1"          # the terminal WebSocket of workspace ws-1
    ...
    await runner.cleanup()
"""

from aiohttp import web

from agent.terminals.manager import TerminalManager


async def serve_terminals(manager: TerminalManager) -> tuple[web.AppRunner, str]:
    """The running server (cleanup() it) and the base URL; append `/{workspace_id}`."""

    async def terminal(request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        await manager.handle(ws, request.match_info["workspace"])
        return ws

    app = web.Application()
    app.router.add_get("/terminal/{workspace}", terminal)
    runner = web.AppRunner(app)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    return runner, f"ws://127.0.0.1:{runner.addresses[0][1]}/terminal"
