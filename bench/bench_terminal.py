"""Terminal benchmark: the agent's TerminalManager vs terminado vs a raw local PTY.

    .venv/bin/python bench/bench_terminal.py [--bytes N] [--keystrokes N] [--sessions N]
                                             [--rounds N]

Side by side in one run, every server a separate process on loopback, every shell
`bash --norc --noprofile -i`, every client an aiohttp WebSocket in this process. The
peers take turns, `--rounds` times (keystrokes and bytes split among the rounds), so that
other work on the machine weighs on each of them alike:

- keystroke echo: send one byte, wait for its echo (readline's); p50 and p99
- output throughput: `head -c N /dev/zero | tr '\\0' x` in the shell, bytes counted by
  the client until a marker printed afterwards arrives
- RSS of the server process (not its shells) with 100 concurrent sessions, one WebSocket
  each

Peers: agent (host shell); terminado (tornado, host shell); when the workspace base image
exists, the shell in a container both ways the Docker backend has (agent/terminals/process.py):
agent-docker (SAM_CONTAINER_EXEC=auto: runc execs it and the agent holds its TTY, when the
agent runs as root) and agent-docker-engine (attached through the Engine's API). And the
limits, read by this process without a server: a raw PTY, and for containers the same two
ways with no agent in between (raw-runc-tty, raw-exec-attach), so that each gap to
terminado splits into the container's share and ours.
Needs `terminado` in the venv (the project's `bench` extra).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

import aiohttp
import psutil

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from agent.shell import ShellCommand  # noqa: E402
from agent.terminals.process import TerminalProcess, start_process  # noqa: E402
from wire import terminal as p  # noqa: E402

BASE_IMAGE = "sam-workspace-base:bookworm"
SHELL_ARGV = ["bash", "--norc", "--noprofile", "-i"]
SHELL_ENV = {"TERM": "xterm-256color", "PS1": "$ ", "LANG": "C.UTF-8"}
PROMPT = b"$ "
MARKER_COMMAND = b"echo DONE$((40+2))\r"
MARKER = b"DONE42"
LINE_CLEAR_EVERY = 40  # keystrokes before the line is killed (Ctrl-U), so it never wraps
START_TIMEOUT_SECONDS = 20.0
STEP_TIMEOUT_SECONDS = 60.0


# -- servers (run as `--serve KIND PORT` in a child process) ----------------------------


def serve_agent(port: int, container: str | None, container_exec: str) -> None:
    from aiohttp import web

    from agent.config import AgentConfig
    from agent.persistence import Store
    from agent.terminals.manager import TerminalManager

    state = tempfile.mkdtemp(prefix="sam-bench-")
    config = AgentConfig.from_environ(
        {
            "SAM_NODE_ID": "bench",
            "SAM_CONTROL_PLANE_URL": "http://127.0.0.1:9",
            "SAM_STATE_DIR": state,
            # Echo is measured back to back, far above any typist's 200 frames/s.
            "SAM_MAX_FRAMES_PER_SECOND": "1000000",
            "SAM_MAX_SESSIONS": "1000",
            "SAM_CONTAINER_EXEC": container_exec,
        }
    )
    if container:
        command = ShellCommand(list(SHELL_ARGV), dict(SHELL_ENV), container=container)
    else:
        command = ShellCommand(list(SHELL_ARGV), dict(SHELL_ENV), state)

    async def shell_for(workspace_id: str) -> ShellCommand:
        return command

    async def main() -> None:
        manager = TerminalManager(config, Store(Path(state) / "agent.db"), shell_for)

        async def terminal(request: web.Request) -> web.WebSocketResponse:
            ws = web.WebSocketResponse()
            await ws.prepare(request)
            await manager.handle(ws, request.match_info["workspace"])
            return ws

        app = web.Application()
        app.router.add_get("/workspaces/{workspace}/terminal/ws", terminal)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        await web.TCPSite(runner, "127.0.0.1", port).start()
        await asyncio.Event().wait()

    asyncio.run(main())


def serve_terminado(port: int) -> None:
    import terminado
    import tornado.web

    async def main() -> None:
        manager = terminado.UniqueTermManager(shell_command=SHELL_ARGV, extra_env=SHELL_ENV)
        app = tornado.web.Application(
            [(r"/websocket", terminado.TermSocket, {"term_manager": manager})]
        )
        app.listen(port, "127.0.0.1")
        await asyncio.Event().wait()

    asyncio.run(main())


# -- clients: one shape for every peer ------------------------------------------------


class AgentClient:
    def __init__(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        self.ws = ws
        self.session_id = ""

    async def open(self) -> None:
        await self.ws.send_str(json.dumps({"type": "create", "cols": 120, "rows": 40}))
        while True:
            message = await self.ws.receive()
            if message.type is aiohttp.WSMsgType.TEXT:
                frame = json.loads(message.data)
                assert frame["type"] == "created", frame
                self.session_id = frame["session"]["session_id"]
                return

    async def send(self, data: bytes) -> None:
        await self.ws.send_bytes(p.encode_input(self.session_id, data))

    async def output(self) -> bytes:
        while True:
            message = await self.ws.receive()
            if message.type is aiohttp.WSMsgType.BINARY:
                return message.data[10 + len(self.session_id) :]
            if message.type is not aiohttp.WSMsgType.TEXT:
                raise ConnectionError(f"websocket ended: {message.type}")


class TerminadoClient:
    def __init__(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        self.ws = ws

    async def open(self) -> None:
        await self.ws.send_str(json.dumps(["set_size", 40, 120]))

    async def send(self, data: bytes) -> None:
        await self.ws.send_str(json.dumps(["stdin", data.decode()]))

    async def output(self) -> bytes:
        while True:
            message = await self.ws.receive()
            if message.type is not aiohttp.WSMsgType.TEXT:
                raise ConnectionError(f"websocket ended: {message.type}")
            kind, *rest = json.loads(message.data)
            if kind == "stdout":
                return rest[0].encode()


class RawPtyClient:
    """The limit: this process reads the PTY itself, no server, no WebSocket."""

    def __init__(self) -> None:
        self.loop = asyncio.get_running_loop()
        self.queue: asyncio.Queue[bytes] = asyncio.Queue()
        master, slave = os.openpty()
        env = {**{k: os.environ[k] for k in ("PATH", "HOME") if k in os.environ}, **SHELL_ENV}
        self.pid = os.posix_spawnp(
            SHELL_ARGV[0],
            SHELL_ARGV,
            env,
            setsid=True,
            file_actions=[
                (os.POSIX_SPAWN_OPEN, 0, os.ttyname(slave), os.O_RDWR, 0),
                (os.POSIX_SPAWN_DUP2, 0, 1),
                (os.POSIX_SPAWN_DUP2, 0, 2),
            ],
        )
        os.close(slave)
        self.fd = master
        self.loop.add_reader(master, lambda: self.queue.put_nowait(os.read(master, 65536)))

    async def open(self) -> None:
        pass

    async def send(self, data: bytes) -> None:
        os.write(self.fd, data)

    async def output(self) -> bytes:
        return await self.queue.get()

    def close(self) -> None:
        self.loop.remove_reader(self.fd)
        os.kill(self.pid, signal.SIGKILL)
        os.waitpid(self.pid, 0)
        os.close(self.fd)


class RawExecClient:
    """A limit for containers: this process holds the shell's TTY or its exec attach."""

    def __init__(self, container: str, mode: str) -> None:
        self.container, self.mode = container, mode
        self.queue: asyncio.Queue[bytes] = asyncio.Queue()
        self.process: TerminalProcess | None = None

    async def open(self) -> None:
        command = ShellCommand(list(SHELL_ARGV), dict(SHELL_ENV), container=self.container)
        self.process = await start_process(
            command, 120, 40, self.queue.put_nowait, 256 * 1024, self.mode
        )

    async def send(self, data: bytes) -> None:
        assert self.process is not None
        self.process.write(data)

    async def output(self) -> bytes:
        return await self.queue.get()

    async def close(self) -> None:
        assert self.process is not None
        await self.process.terminate()
        self.process.close()


Client = AgentClient | TerminadoClient | RawPtyClient | RawExecClient


async def read_until(client: Client, needle: bytes, count: list[int] | None = None) -> None:
    tail = b""
    while True:
        data = await client.output()
        if count is not None:
            count[0] += len(data)
        window = tail + data
        if needle in window:
            return
        tail = window[-len(needle) :]


async def drain(client: Client, quiet_seconds: float = 0.05) -> None:
    while True:
        try:
            await asyncio.wait_for(client.output(), quiet_seconds)
        except TimeoutError:
            return


async def echo_latencies(client: Client, keystrokes: int) -> list[float]:
    await drain(client, 0.3)
    samples = []
    for index in range(keystrokes):
        started = time.perf_counter()
        await client.send(b"x")
        while b"x" not in await client.output():
            pass
        samples.append(time.perf_counter() - started)
        if index % LINE_CLEAR_EVERY == LINE_CLEAR_EVERY - 1:
            await client.send(b"\x15")
            await drain(client)
    await client.send(b"\x15")
    await drain(client)
    return samples


async def throughput(client: Client, total_bytes: int) -> tuple[float, int]:
    command = f"head -c {total_bytes} /dev/zero | tr '\\0' x; ".encode() + MARKER_COMMAND
    count = [0]
    started = time.perf_counter()
    await client.send(command)
    await read_until(client, MARKER, count)
    elapsed = time.perf_counter() - started
    await drain(client)
    return count[0] / elapsed, count[0]


# -- orchestration ------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def start_server(
    kind: str, container: str | None = None, container_exec: str = "auto"
) -> tuple[subprocess.Popen, int]:
    port = free_port()
    argv = [sys.executable, __file__, "--serve", kind, "--port", str(port)]
    if container:
        argv += ["--container", container, "--container-exec", container_exec]
    process = subprocess.Popen(argv, cwd=ROOT)
    deadline = time.monotonic() + START_TIMEOUT_SECONDS
    while time.monotonic() < deadline:
        with socket.socket() as probe:
            if probe.connect_ex(("127.0.0.1", port)) == 0:
                return process, port
        time.sleep(0.05)
    process.kill()
    raise RuntimeError(f"{kind} server did not listen on {port}")


def stop_server(process: subprocess.Popen) -> None:
    process.terminate()
    try:
        process.wait(5)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def ws_url(kind: str, port: int, workspace: str = "bench") -> str:
    if kind == "terminado":
        return f"ws://127.0.0.1:{port}/websocket"
    return f"ws://127.0.0.1:{port}/workspaces/{workspace}/terminal/ws"


async def connect(http: aiohttp.ClientSession, kind: str, port: int) -> Client:
    ws = await http.ws_connect(ws_url(kind, port), max_msg_size=0)
    client: Client = TerminadoClient(ws) if kind == "terminado" else AgentClient(ws)
    await client.open()
    await asyncio.wait_for(read_until(client, PROMPT), START_TIMEOUT_SECONDS)
    return client


async def measure_peers(
    makers: dict[str, Callable[[], Awaitable[Client]]], args: argparse.Namespace
) -> dict[str, dict[str, float]]:
    """Every peer in turn, round after round (the order reversed every other round), so a
    load that comes and goes on this machine weighs on each of them alike."""
    clients = {name: await make() for name, make in makers.items()}
    echoes: dict[str, list[float]] = {name: [] for name in clients}
    moved = {name: [0, 0.0] for name in clients}  # bytes counted, seconds
    for index in range(args.rounds):
        names = list(clients) if index % 2 == 0 else list(reversed(clients))
        for name in names:
            echo = echo_latencies(clients[name], args.keystrokes // args.rounds)
            echoes[name] += await asyncio.wait_for(echo, STEP_TIMEOUT_SECONDS)
        for name in names:
            output = throughput(clients[name], args.bytes // args.rounds)
            rate, counted = await asyncio.wait_for(output, STEP_TIMEOUT_SECONDS)
            moved[name][0] += counted
            moved[name][1] += counted / rate
    results = {}
    for name, client in clients.items():
        if isinstance(client, RawPtyClient):
            client.close()
        elif isinstance(client, RawExecClient):
            await client.close()
        else:
            await client.ws.close()
        cuts = statistics.quantiles(echoes[name], n=100)
        counted, seconds = moved[name]
        result = {
            "p50_ms": cuts[49] * 1e3,
            "p99_ms": cuts[98] * 1e3,
            "mb_per_s": counted / seconds / 1e6,
        }
        print(
            f"  {name:<22} echo p50 {result['p50_ms']:6.3f} ms  p99 {result['p99_ms']:6.3f} ms"
            f"   output {result['mb_per_s']:7.1f} MB/s ({counted / 1e6:.1f} MB counted)",
            flush=True,
        )
        results[name] = result
    return results


async def measure_rss(kind: str, sessions: int) -> tuple[float, float]:
    process, port = start_server(kind)
    try:
        server = psutil.Process(process.pid)
        await asyncio.sleep(0.5)
        baseline = server.memory_info().rss
        async with aiohttp.ClientSession() as http:
            clients = await asyncio.gather(*(connect(http, kind, port) for _ in range(sessions)))
            await asyncio.sleep(1.0)
            loaded = server.memory_info().rss
            for client in clients:
                await client.ws.close()
        return baseline / 2**20, loaded / 2**20
    finally:
        stop_server(process)


def base_image_container() -> str | None:
    inspect = subprocess.run(
        ["docker", "image", "inspect", BASE_IMAGE], capture_output=True, check=False
    )
    if inspect.returncode != 0:
        return None
    run = subprocess.run(
        ["docker", "run", "-d", "--rm", "--network", "none", BASE_IMAGE, "sleep", "infinity"],
        capture_output=True,
        text=True,
        check=True,
    )
    return run.stdout.strip()


async def run(args: argparse.Namespace) -> None:
    print(
        f"terminal benchmark: {args.keystrokes} keystrokes, {args.bytes / 1e6:.0f} MB output "
        f"per peer in {args.rounds} rounds, {args.sessions} sessions; "
        f"python {sys.version.split()[0]}, {os.cpu_count()} CPUs",
        flush=True,
    )
    container = base_image_container()
    if container and os.geteuid() != 0:
        print("  (not root: agent-docker and raw-runc-tty go through the Engine's API too)")
    servers = {"agent": start_server("agent"), "terminado": start_server("terminado")}
    if container:
        servers["agent-docker"] = start_server("agent", container)
        servers["agent-docker-engine"] = start_server("agent", container, "engine")
    try:
        async with aiohttp.ClientSession() as http:
            makers: dict[str, Callable[[], Awaitable[Client]]] = {
                name: lambda name=name, port=port: connect(
                    http, "terminado" if name == "terminado" else "agent", port
                )
                for name, (_, port) in servers.items()
            }

            async def raw_pty() -> Client:
                client = RawPtyClient()
                await asyncio.wait_for(read_until(client, PROMPT), START_TIMEOUT_SECONDS)
                return client

            async def raw_exec(container: str, mode: str) -> Client:
                client = RawExecClient(container, mode)
                await client.open()
                await asyncio.wait_for(read_until(client, PROMPT), START_TIMEOUT_SECONDS)
                return client

            makers["raw-pty"] = raw_pty
            if container:
                makers["raw-runc-tty"] = lambda: raw_exec(container, "runtime")
                makers["raw-exec-attach"] = lambda: raw_exec(container, "engine")
            results = await measure_peers(makers, args)
    finally:
        for process, _ in servers.values():
            stop_server(process)
        if container:
            subprocess.run(["docker", "rm", "-f", container], capture_output=True, check=False)
    if not container:
        print(f"  (the container peers skipped: no {BASE_IMAGE} image)")

    rss = {kind: await measure_rss(kind, args.sessions) for kind in ("agent", "terminado")}
    for kind, (idle, loaded) in rss.items():
        print(
            f"  {kind:<22} RSS idle {idle:6.1f} MB, with {args.sessions} sessions "
            f"{loaded:6.1f} MB (+{loaded - idle:.1f} MB)"
        )

    peer = results["terminado"]
    print("ratios (target):")
    for bare_name, name in (
        ("raw-runc-tty", "agent-docker"),
        ("raw-exec-attach", "agent-docker-engine"),
    ):
        if bare_name in results:
            bare, served = results[bare_name], results[name]
            print(
                f"  {bare_name:<19} echo p50 {bare['p50_ms'] / peer['p50_ms']:.2f}x terminado;"
                f" {name} adds {served['p50_ms'] - bare['p50_ms']:.3f} ms p50 on top of it"
            )
    for name in ("agent", "agent-docker", "agent-docker-engine"):
        if name in results:
            ours = results[name]
            print(
                f"  {name:<19} echo p50 {ours['p50_ms'] / peer['p50_ms']:.2f}x terminado (<= 1.3)"
                f"  p99 {ours['p99_ms'] / peer['p99_ms']:.2f}x (<= 2)"
                f"  output {ours['mb_per_s'] / peer['mb_per_s']:.2f}x terminado (>= 1.0),"
                f" {ours['mb_per_s'] / results['raw-pty']['mb_per_s']:.2f}x raw PTY"
            )
    print(f"  agent RSS with {args.sessions} sessions {rss['agent'][1]:.1f} MB (<= 150)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--bytes", type=int, default=100_000_000)
    parser.add_argument("--keystrokes", type=int, default=400)
    parser.add_argument("--sessions", type=int, default=100)
    parser.add_argument("--rounds", type=int, default=8)
    parser.add_argument("--serve", choices=("agent", "terminado"))
    parser.add_argument("--port", type=int)
    parser.add_argument("--container")
    parser.add_argument("--container-exec", default="auto")
    args = parser.parse_args()
    if args.serve == "agent":
        serve_agent(args.port, args.container, args.container_exec)
    elif args.serve == "terminado":
        serve_terminado(args.port)
    else:
        asyncio.run(run(args))


if __name__ == "__main__":
    main()
