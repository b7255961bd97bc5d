"""Terminal benchmark: the real node agent vs terminado vs a raw local PTY.

    .venv/bin/python bench/bench_terminal.py [--bytes N] [--keystrokes N] [--sessions N]
                                             [--rounds N] [--smoke]

Side by side in one run, every server a separate process on loopback, every client an
aiohttp WebSocket in this process. The peers take turns, `--rounds` times (keystrokes and
bytes split among the rounds), so that other work on the machine weighs on each of them
alike:

- keystroke echo: send one byte, wait for its echo (readline's); p50 and p99. Keystrokes
  are sent at most TYPING_FRAMES_PER_SECOND apart on every peer: faster than any typist,
  under the agent's limit of 200 frames per second per connection
- output throughput: `head -c N /dev/zero | tr '\\0' x` in the shell, bytes counted by
  the client until a marker printed afterwards arrives
- RSS of the server process (not its shells) with 100 concurrent sessions, one WebSocket
  each (the agent's limit is 32 sessions a workspace, so they are spread over workspaces)

The agent is the real daemon (`python -m agent`, as systemd starts it on a VM) with its
default limits (frame size and rate, sessions), its workspaces made by `POST /workspaces`
and its terminals opened with a signed sam:terminal token that it checks against the
JWKS of the control-plane double (tests/support/control_plane.py), which also receives its
callbacks. Peers: agent (host backend: a login shell on this machine); terminado (tornado,
`bash --norc --noprofile -i`); when the workspace base image exists, a workspace container
on the agent's Docker backend both ways it has (agent/terminals/process.py): agent-docker
(SAM_CONTAINER_EXEC=auto: runc execs it and the agent holds its TTY, when the agent runs
as root) and agent-docker-engine (attached through the Engine's API). And the limits, read
by this process without a server: a raw PTY, and for containers the same two ways with no
agent in between (raw-runc-tty, raw-exec-attach), so that each gap to terminado splits
into the container's share and ours.

Every reply is checked: an error frame, a refused token or a closed socket ends the run
with the agent's own message. `--smoke` runs every peer for a few keystrokes and a few
sessions (tests/bench/ runs it in the suite so that the benchmark cannot rot); its figures
mean nothing. Needs `terminado` in the venv (the project's `bench` extra).
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
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path

import aiohttp
import psutil

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from agent.shell import ShellCommand  # noqa: E402
from agent.terminals.process import TerminalProcess, start_process  # noqa: E402
from agent.workspaces.containers import LABEL_NODE  # noqa: E402
from bench.agent_workspace import BenchError, provision  # noqa: E402
from tests.fixtures.repos import make_repo  # noqa: E402
from tests.support.agent import AgentProcess, free_port, start_agent  # noqa: E402
from tests.support.control_plane import ControlPlaneDouble  # noqa: E402
from tests.support.docker_objects import remove_labelled  # noqa: E402
from wire import terminal as p  # noqa: E402

BASE_IMAGE = "sam-workspace-base:bookworm"
SHELL_ARGV = ["bash", "--norc", "--noprofile", "-i"]
SHELL_ENV = {"TERM": "xterm-256color", "PS1": "$ ", "LANG": "C.UTF-8"}
MARKER_COMMAND = b"echo DONE$((40+2))\r"
MARKER = b"DONE42"
LINE_CLEAR_EVERY = 40  # keystrokes before the line is killed (Ctrl-U), so it never wraps
TYPING_FRAMES_PER_SECOND = 150
START_TIMEOUT_SECONDS = 20.0
STEP_TIMEOUT_SECONDS = 60.0
SESSIONS_PER_WORKSPACE = 25  # under the agent's default limit of 32
SESSIONS_STARTING_AT_ONCE = 8
SMOKE = {"bytes": 200_000, "keystrokes": 8, "sessions": 4, "rounds": 2}


# -- the real agent -------------------------------------------------------------------


class Agent:
    """A real `python -m agent`, its own control-plane double (one node each, so that no
    agent takes another's containers for orphans) and the workspaces made on it."""

    def __init__(self, work: Path, backend: str, **env: str) -> None:
        self.node_id = f"bench-term-{uuid.uuid4().hex[:8]}"
        self.control_plane = ControlPlaneDouble(node_id=self.node_id).__enter__()
        extra = {"SAM_LOG_LEVEL": "INFO", "SAM_BASE_IMAGE": BASE_IMAGE, **env}
        try:
            self.process: AgentProcess = start_agent(
                self.control_plane, work / self.node_id, backend=backend, extra_env=extra
            )
        except BaseException:
            self.control_plane.__exit__(None, None, None)
            raise

    def create_workspace(self, workspace_id: str, repository: Path) -> None:
        provision(self.process, self.control_plane, workspace_id, repository)

    def terminal_url(self, workspace_id: str) -> str:
        token = self.control_plane.terminal_token(workspace_id)
        return f"{self.process.ws_url}/workspaces/{workspace_id}/terminal/ws?token={token}"

    @property
    def pid(self) -> int:
        assert self.process.process is not None
        return self.process.process.pid

    def stop(self) -> None:
        try:
            self.process.stop()
        finally:
            self.control_plane.__exit__(None, None, None)
            remove_labelled(f"{LABEL_NODE}={self.node_id}")  # its containers and networks


# -- terminado (run as `--serve terminado PORT` in a child process) ----------------------


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
    """The agent's terminal protocol (wire/terminal.py): every control frame checked."""

    def __init__(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        self.ws = ws
        self.session_id = ""

    async def open(self) -> None:
        await self.ws.send_str(json.dumps({"type": "create", "cols": 120, "rows": 40}))
        frame = await self._control()
        if frame.get("type") != "created":
            raise BenchError(f"the agent answered create with {frame}")
        self.session_id = frame["session"]["session_id"]

    async def send(self, data: bytes) -> None:
        await self.ws.send_bytes(p.encode_input(self.session_id, data))

    async def output(self) -> bytes:
        while True:
            message = await self.ws.receive()
            if message.type is aiohttp.WSMsgType.BINARY:
                session_id, _, data = p.decode_output(message.data)
                if session_id != self.session_id:
                    raise BenchError(f"output for session {session_id}, not {self.session_id}")
                return data
            self._check(message)

    async def _control(self) -> dict:
        message = await self.ws.receive()
        self._check(message)
        return json.loads(message.data)

    def _check(self, message: aiohttp.WSMessage) -> None:
        if message.type is not aiohttp.WSMsgType.TEXT:
            raise BenchError(
                f"the agent's WebSocket ended ({message.type.name}, code {self.ws.close_code})"
            )
        frame = json.loads(message.data)
        if frame.get("type") in ("error", "exit"):
            raise BenchError(f"the agent sent {frame}")


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
                raise BenchError(f"terminado's WebSocket ended: {message.type.name}")
            kind, *rest = json.loads(message.data)
            if kind == "stdout":
                return rest[0].encode()
            if kind == "disconnect":
                raise BenchError("terminado's shell ended")


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
    gap = 1 / TYPING_FRAMES_PER_SECOND

    async def paced(data: bytes, after: float) -> float:
        await asyncio.sleep(max(0.0, after + gap - time.perf_counter()))
        sent = time.perf_counter()
        await client.send(data)
        return sent

    await drain(client, 0.3)
    samples = []
    sent = 0.0
    for index in range(keystrokes):
        sent = await paced(b"x", sent)
        while b"x" not in await client.output():
            pass
        samples.append(time.perf_counter() - sent)
        if index % LINE_CLEAR_EVERY == LINE_CLEAR_EVERY - 1:
            sent = await paced(b"\x15", sent)
            await drain(client)
    await paced(b"\x15", sent)
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


def start_terminado() -> tuple[subprocess.Popen, int]:
    port = free_port()
    process = subprocess.Popen([sys.executable, __file__, "--serve-terminado", str(port)], cwd=ROOT)
    deadline = time.monotonic() + START_TIMEOUT_SECONDS
    while time.monotonic() < deadline:
        with socket.socket() as probe:
            if probe.connect_ex(("127.0.0.1", port)) == 0:
                return process, port
        if process.poll() is not None:
            break
        time.sleep(0.05)
    process.kill()
    raise BenchError(f"terminado did not listen on {port} (exit {process.poll()})")


def stop_server(process: subprocess.Popen) -> None:
    process.terminate()
    try:
        process.wait(5)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


async def ready(client: Client) -> Client:
    """`client` once its shell ran a command: whatever the prompt looks like."""
    await client.open()
    await client.send(MARKER_COMMAND)
    await asyncio.wait_for(read_until(client, MARKER), START_TIMEOUT_SECONDS)
    return client


async def connect_agent(http: aiohttp.ClientSession, url: str) -> Client:
    try:
        ws = await http.ws_connect(url, max_msg_size=0)
    except aiohttp.WSServerHandshakeError as exc:
        raise BenchError(f"the agent refused the terminal WebSocket: {exc.status}") from exc
    return await ready(AgentClient(ws))


async def connect_terminado(http: aiohttp.ClientSession, port: int) -> Client:
    ws = await http.ws_connect(f"ws://127.0.0.1:{port}/websocket", max_msg_size=0)
    return await ready(TerminadoClient(ws))


async def close(client: Client) -> None:
    if isinstance(client, RawPtyClient):
        client.close()
    elif isinstance(client, RawExecClient):
        await client.close()
    else:
        await client.ws.close()


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
            if counted < args.bytes // args.rounds:
                raise BenchError(f"{name}: {counted} bytes arrived of {args.bytes // args.rounds}")
            moved[name][0] += counted
            moved[name][1] += counted / rate
    results = {}
    for name, client in clients.items():
        await close(client)
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


async def measure_rss(
    pid: int, sessions: int, connect: Callable[[int], Awaitable[Client]]
) -> tuple[float, float]:
    """The server's RSS idle, then with `sessions` clients each at a shell prompt."""
    server = psutil.Process(pid)
    baseline = server.memory_info().rss
    # A few shells starting at a time, so that 100 login shells do not starve each other.
    starting = asyncio.Semaphore(SESSIONS_STARTING_AT_ONCE)

    async def one(index: int) -> Client:
        async with starting:
            return await connect(index)

    clients = await asyncio.gather(*(one(index) for index in range(sessions)))
    loaded = server.memory_info().rss
    for client in clients:
        await close(client)
    return baseline / 2**20, loaded / 2**20


async def agent_rss(work: Path, repo: Path, sessions: int) -> tuple[float, float]:
    """A fresh host-backend agent, its sessions spread over workspaces of at most
    SESSIONS_PER_WORKSPACE (its own limit is 32)."""
    agent = Agent(work, "host")
    try:
        workspaces = [f"ws-rss-{n}" for n in range(-(-sessions // SESSIONS_PER_WORKSPACE))]
        for workspace_id in workspaces:
            agent.create_workspace(workspace_id, repo)
        async with aiohttp.ClientSession() as http:

            async def connect(index: int) -> Client:
                url = agent.terminal_url(workspaces[index // SESSIONS_PER_WORKSPACE])
                return await connect_agent(http, url)

            return await measure_rss(agent.pid, sessions, connect)
    finally:
        agent.stop()


async def terminado_rss(sessions: int) -> tuple[float, float]:
    process, port = start_terminado()
    try:
        async with aiohttp.ClientSession() as http:
            return await measure_rss(process.pid, sessions, lambda _: connect_terminado(http, port))
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


async def run(args: argparse.Namespace, work: Path) -> None:
    print(
        f"terminal benchmark: {args.keystrokes} keystrokes, {args.bytes / 1e6:.1f} MB output "
        f"per peer in {args.rounds} rounds, {args.sessions} sessions; "
        f"python {sys.version.split()[0]}, {os.cpu_count()} CPUs",
        flush=True,
    )
    repo = make_repo(work, "bench-repo")
    container = base_image_container()
    if container and os.geteuid() != 0:
        print("  (not root: agent-docker and raw-runc-tty go through the Engine's API too)")
    agents: dict[str, Agent] = {}
    terminado: subprocess.Popen | None = None
    try:
        agents["agent"] = Agent(work, "host")
        if container:
            agents["agent-docker"] = Agent(work, "docker")
            agents["agent-docker-engine"] = Agent(work, "docker", SAM_CONTAINER_EXEC="engine")
        for name, agent in agents.items():
            agent.create_workspace(f"ws-{name}", repo)
        terminado, terminado_port = start_terminado()
        async with aiohttp.ClientSession() as http:
            makers: dict[str, Callable[[], Awaitable[Client]]] = {
                name: lambda name=name, agent=agent: connect_agent(
                    http, agent.terminal_url(f"ws-{name}")
                )
                for name, agent in agents.items()
            }
            makers["terminado"] = lambda: connect_terminado(http, terminado_port)

            async def raw_pty() -> Client:
                return await ready(RawPtyClient())

            async def raw_exec(container: str, mode: str) -> Client:
                return await ready(RawExecClient(container, mode))

            makers["raw-pty"] = raw_pty
            if container:
                makers["raw-runc-tty"] = lambda: raw_exec(container, "runtime")
                makers["raw-exec-attach"] = lambda: raw_exec(container, "engine")
            results = await measure_peers(makers, args)
    finally:
        if terminado is not None:
            stop_server(terminado)
        for agent in agents.values():
            agent.stop()
        if container:
            subprocess.run(["docker", "rm", "-f", container], capture_output=True, check=False)
    if not container:
        print(f"  (the container peers skipped: no {BASE_IMAGE} image)")

    rss = {
        "agent": await agent_rss(work, repo, args.sessions),
        "terminado": await terminado_rss(args.sessions),
    }
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
    parser.add_argument("--smoke", action="store_true", help="a few of everything, no figures")
    parser.add_argument("--serve-terminado", type=int, metavar="PORT", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve_terminado:
        serve_terminado(args.serve_terminado)
        return
    if args.smoke:
        vars(args).update(SMOKE)
    # A SIGTERM runs the cleanup (agents, containers) too.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    with tempfile.TemporaryDirectory(
        prefix="sam-bench-terminal-", ignore_cleanup_errors=True
    ) as work:
        asyncio.run(run(args, Path(work)))


if __name__ == "__main__":
    main()
