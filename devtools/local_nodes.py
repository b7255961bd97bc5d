"""The local edge's node launcher: the `LOCAL_NODES` binding behind the `local` provider.

Worker code cannot start processes, so under `sam dev` the edge adds this object to `env`
as a service binding (`await env.LOCAL_NODES.fetch(request)`; worker/nodes/providers/local.py):

    POST   /nodes        {node_id, user_id?, control_plane_url, bootstrap_token}
                         → 201 {node_id, agent_host, agent_port}
    DELETE /nodes/{id}   → 200 {node_id, deleted}; an unknown node too (already gone)
    GET    /nodes        → 200 {"nodes": [{node_id, user_id, agent_port, running, pid}]}
    POST   /repositories/check  {path, roots: [dir, ...] | null}
                         → 200 {"path": resolved, or null: not one this user may clone}
                         (devtools/local_repositories.py)

A node is `python -m agent` serving TLS on a free loopback port as `vm-{id}.localhost`,
with its state in `<data_dir>/nodes/<id>/` (node.json, state/, tls/, agent.log). Its
certificate is issued at every start by this machine's CA (devtools/local_ca.py, in
`<data_dir>/local-ca/`), the one CA the local edge trusts for `*.localhost`.

Creating one does what a cloud node's cloud-init does
(worker/nodes/providers/hetzner/cloud_init.py): exchange the bootstrap token at
POST /api/bootstrap/{token} for the callback token (0600, before the agent starts), start
the agent, and once it answers /health, POST /api/nodes/{id}/ready. The backend is
`docker` when a Docker Engine answers, `host` when there is none (workspaces run
unisolated on this machine: logged loudly, and for one user only: the first to get a node;
anyone else is refused and told to start a Docker Engine); an engine that does not answer
`docker info` in time refuses the node (503 docker_not_answering) instead of falling back
quietly.

The edge starts the launcher with itself and stops every agent when it stops (SIGTERM,
then SIGKILL). After a restart the known nodes start again; their bootstrap tokens are
long spent, so the launcher, which runs inside the control plane, gives each a fresh
callback token itself, and reports the (possibly new) port with a ready callback.
"""

import asyncio
import contextlib
import json
import logging
import os
import re
import shutil
import signal
import sys
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit

from devtools.local_ca import LocalCa
from devtools.local_repositories import confined_repository
from devtools.machine import (
    DOCKER_PROBE_TIMEOUT_SECONDS,
    STOP_TIMEOUT_SECONDS,
    DockerProbe,
    end_stale_agent,
    free_port,
    port_free,
    probe_docker,
    remove_containers,
    write_token_file,
)
from twin import upstream
from twin.http import Request, Response
from twin.private_files import private_dir
from twin.tls_trust import verification_for
from wire.version import VERSION
from worker.auth import scoped_tokens
from worker.deployment import Deployment

log = logging.getLogger("sam.local.nodes")

NODE_FILE = "node.json"
READY_WAIT_SECONDS = 60.0
HEALTH_POLL_SECONDS = 0.2
CALL_TIMEOUT_SECONDS = 15.0
# Set in the edge's own environment to make local agents beat faster (tests do).
HEARTBEAT_OVERRIDE_ENV = "SAM_LOCAL_NODE_HEARTBEAT_SECONDS"
NODE_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}")
LOCAL_CA_DIR = "local-ca"
TLS_DIR = "tls"


def agent_hostname(node_id: str) -> str:
    """The name a local node's agent is reached at and certified for (always loopback)."""
    return f"vm-{node_id}.localhost"


@dataclass
class LocalNode:
    node_id: str
    user_id: str | None
    control_plane_url: str
    port: int
    backend: str
    pid: int | None = None


class LauncherError(Exception):
    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message


class LocalNodes:
    def __init__(self, root: Path, env: Any, ca: LocalCa, python: str = sys.executable) -> None:
        self.root = root
        self._ca = ca
        self._env = env
        self._python = python
        self._processes: dict[str, asyncio.subprocess.Process] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self._lock = asyncio.Lock()
        self._backend: str | None = None

    # --- the edge's lifecycle -----------------------------------------------------------

    async def start(self) -> None:
        """Start again every node this data directory knows (in the background)."""
        private_dir(self.root)
        for path in sorted(self.root.glob(f"*/{NODE_FILE}")):
            node = LocalNode(**json.loads(path.read_text()))
            self._background(self._restart(node))

    async def stop(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*(self._stop_agent(node_id) for node_id in list(self._processes)))

    # --- the binding ----------------------------------------------------------------------

    async def fetch(self, request: Request) -> Response:
        path = urlsplit(request.url).path.rstrip("/")
        try:
            if path == "/nodes" and request._method == "GET":
                return Response.from_json({"nodes": self._list()})
            if path == "/nodes" and request._method == "POST":
                return Response.from_json(await self._create(await request.json()), 201)
            if path == "/repositories/check" and request._method == "POST":
                return Response.from_json(_check_repository(await request.json()))
            if path.startswith("/nodes/") and request._method == "DELETE":
                return Response.from_json(await self._delete(path.removeprefix("/nodes/")))
            raise LauncherError(404, "not_found", f"no {request._method} {path} here")
        except LauncherError as exc:
            return Response.from_json({"error": exc.code, "message": exc.message}, exc.status)
        except ValueError:
            return Response.from_json({"error": "bad_request", "message": "malformed JSON"}, 400)

    def _list(self) -> list[dict[str, Any]]:
        listed = []
        for path in sorted(self.root.glob(f"*/{NODE_FILE}")):
            node = LocalNode(**json.loads(path.read_text()))
            process = self._processes.get(node.node_id)
            listed.append(
                {
                    "node_id": node.node_id,
                    "user_id": node.user_id,
                    "agent_port": node.port,
                    "running": process is not None and process.returncode is None,
                    "pid": node.pid,
                }
            )
        return listed

    async def _create(self, body: Any) -> dict[str, Any]:
        if not isinstance(body, dict):
            raise LauncherError(400, "bad_request", "the body must be a JSON object")
        node_id, url, token = (
            body.get(k) for k in ("node_id", "control_plane_url", "bootstrap_token")
        )
        if not isinstance(node_id, str) or not NODE_ID.fullmatch(node_id):
            raise LauncherError(400, "bad_request", "node_id: letters, digits, '.', '_', '-'")
        if not isinstance(url, str) or urlsplit(url).scheme not in ("http", "https"):
            raise LauncherError(400, "bad_request", "control_plane_url must be an http(s) URL")
        if not isinstance(token, str) or not token:
            raise LauncherError(400, "bad_request", "bootstrap_token is required")
        async with self._lock:
            if (self.root / node_id / NODE_FILE).exists():
                raise LauncherError(409, "node_exists", f"local node {node_id} already exists")
            backend = await self.backend()
            if backend == "host":
                self._refuse_a_second_host_user(body.get("user_id"))
            node = LocalNode(node_id, body.get("user_id"), url, free_port(), backend)
            directory = self.root / node_id
            private_dir(directory / "state")  # the agent's tokens and database
            try:
                reply = await self._call(
                    "POST", f"{url}/api/bootstrap/{quote(token, safe='')}", expect=200
                )
            except LauncherError:
                shutil.rmtree(directory, ignore_errors=True)
                raise
            write_token_file(self._token_file(node_id), reply["callback_token"])
            await self._spawn(node)
        self._background(self._report_ready(node))
        return {"node_id": node_id, "agent_host": agent_hostname(node_id), "agent_port": node.port}

    async def _delete(self, node_id: str) -> dict[str, Any]:
        if not NODE_ID.fullmatch(node_id):
            raise LauncherError(400, "bad_request", "not a node id")
        async with self._lock:
            await self._stop_agent(node_id)
            # What deleting a VM does to everything in it: the node's containers go too.
            await remove_containers(node_id)
            directory = self.root / node_id
            existed = directory.exists()
            shutil.rmtree(directory, ignore_errors=True)
        log.info("local_node.deleted node_id=%s existed=%s", node_id, existed)
        return {"node_id": node_id, "deleted": existed}

    # --- agents -------------------------------------------------------------------------

    async def backend(self) -> str:
        """`docker` if a Docker Engine answers (asked once), `host` if there is none; an
        engine too slow to answer is an error, never a quiet fall back to `host`."""
        if self._backend is None:
            probe = await probe_docker()
            if probe is DockerProbe.SLOW:
                log.error(
                    "local_nodes.docker_slow: docker info did not answer within %.0fs",
                    DOCKER_PROBE_TIMEOUT_SECONDS,
                )
                raise LauncherError(
                    503,
                    "docker_not_answering",
                    f"the Docker Engine did not answer `docker info` within "
                    f"{DOCKER_PROBE_TIMEOUT_SECONDS:.0f} s, so no local node was started; "
                    "check it (scripts/docker-engine) and create the workspace again",
                )
            self._backend = "docker" if probe is DockerProbe.ANSWERS else "host"
            if self._backend == "host":
                log.warning(
                    "local_nodes.no_docker: no Docker Engine answered, so local nodes run "
                    "workspaces directly on this machine with backend=host: NOT ISOLATED. "
                    "Start dockerd for isolated workspaces."
                )
        return self._backend

    def _refuse_a_second_host_user(self, user_id: Any) -> None:
        """Unisolated workspaces are for a single-user deployment: one user's only."""
        users = {each["user_id"] for each in self._list()}
        if users - {user_id}:
            raise LauncherError(
                409,
                "host_backend_single_user",
                "No Docker Engine answers on this machine, so workspaces would run "
                "unisolated on it, which only one user may do. Start one with "
                "scripts/docker-engine and restart scripts/dev.",
            )

    async def _restart(self, node: LocalNode) -> None:
        await end_stale_agent(node.pid, node.node_id)
        deployment = Deployment.of(self._env)
        node.control_plane_url = scoped_tokens.control_plane_url(deployment.config)
        minted = await scoped_tokens.mint_node_token(deployment, node.node_id)
        write_token_file(self._token_file(node.node_id), minted.token)
        if not port_free(node.port):
            node.port = free_port()
        async with self._lock:
            if not (self.root / node.node_id / NODE_FILE).exists():
                return  # deleted meanwhile
            await self._spawn(node)
        await self._report_ready(node)

    async def _spawn(self, node: LocalNode) -> None:
        directory = self.root / node.node_id
        state = directory / "state"
        tls = self._ca.issue(agent_hostname(node.node_id), directory / TLS_DIR)
        environ = {k: v for k, v in os.environ.items() if not k.startswith("SAM_")}
        environ.update(
            SAM_NODE_ID=node.node_id,
            SAM_CONTROL_PLANE_URL=node.control_plane_url,
            SAM_AGENT_HOST="127.0.0.1",
            SAM_AGENT_PORT=str(node.port),
            SAM_TLS_CERT=str(tls.cert),
            SAM_TLS_KEY=str(tls.key),
            SAM_STATE_DIR=str(state),
            SAM_CALLBACK_TOKEN_FILE=str(self._token_file(node.node_id)),
            SAM_BACKEND=node.backend,
            PYTHONUNBUFFERED="1",
        )
        if os.environ.get(HEARTBEAT_OVERRIDE_ENV):
            environ["SAM_HEARTBEAT_SECONDS"] = os.environ[HEARTBEAT_OVERRIDE_ENV]
        with (directory / "agent.log").open("ab") as agent_log:
            process = await asyncio.create_subprocess_exec(
                self._python,
                "-m",
                "agent",
                cwd=directory,
                env=environ,
                stdout=agent_log,
                stderr=asyncio.subprocess.STDOUT,
                start_new_session=True,  # stopped by us, not by the terminal's Ctrl-C
            )
        self._processes[node.node_id] = process
        node.pid = process.pid
        _save(directory / NODE_FILE, node)
        log.info(
            "local_node.started node_id=%s port=%d backend=%s pid=%d",
            node.node_id,
            node.port,
            node.backend,
            process.pid,
        )

    async def _stop_agent(self, node_id: str) -> None:
        process = self._processes.pop(node_id, None)
        if process is None or process.returncode is not None:
            return
        process.send_signal(signal.SIGTERM)
        try:
            await asyncio.wait_for(process.wait(), STOP_TIMEOUT_SECONDS)
        except TimeoutError:
            process.kill()
            await process.wait()
        log.info("local_node.stopped node_id=%s code=%s", node_id, process.returncode)

    async def _report_ready(self, node: LocalNode) -> None:
        """What cloud-init's 60-ready.sh does: wait for /health, then the ready callback."""
        health = f"https://{agent_hostname(node.node_id)}:{node.port}/health"
        loop = asyncio.get_running_loop()
        deadline = loop.time() + READY_WAIT_SECONDS
        while True:
            process = self._processes.get(node.node_id)
            if process is None or process.returncode is not None or loop.time() > deadline:
                log.warning("local_node.not_ready node_id=%s (see its agent.log)", node.node_id)
                return
            with contextlib.suppress(LauncherError):
                await self._call("GET", health, expect=200)
                break
            await asyncio.sleep(HEALTH_POLL_SECONDS)
        token = self._token_file(node.node_id).read_text().strip()
        try:
            await self._call(
                "POST",
                f"{node.control_plane_url}/api/nodes/{node.node_id}/ready",
                expect=200,
                body={"agent_port": node.port, "version": VERSION},
                token=token,
            )
        except LauncherError as exc:  # the agent's first heartbeat reports it instead
            log.warning("local_node.ready_refused node_id=%s %s", node.node_id, exc.message)

    # --- helpers ------------------------------------------------------------------------

    def _token_file(self, node_id: str) -> Path:
        return self.root / node_id / "state" / "callback-token"

    def _background(self, work: Any) -> None:
        task = asyncio.ensure_future(work)
        self._tasks.add(task)
        task.add_done_callback(self._finished)

    def _finished(self, task: asyncio.Task[None]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("local_nodes.task_failed", exc_info=task.exception())

    async def _call(
        self,
        method: str,
        url: str,
        expect: int,
        body: dict[str, Any] | None = None,
        token: str | None = None,
    ) -> Any:
        headers = {"authorization": f"Bearer {token}"} if token else {}
        try:
            async with asyncio.timeout(CALL_TIMEOUT_SECONDS):
                async with upstream.session().request(
                    method, url, json=body, headers=headers, ssl=verification_for(url)
                ) as reply:
                    text = await reply.text()
        except Exception as exc:  # aiohttp's errors, timeouts: only the type is kept
            raise LauncherError(
                502, "unreachable", f"{method} {_path(url)}: {type(exc).__name__}"
            ) from None
        try:
            answer = json.loads(text) if text else {}
        except ValueError:
            answer = {}
        if reply.status != expect:
            said = answer.get("error") if isinstance(answer, dict) else None
            raise LauncherError(
                502,
                "control_plane_refused",
                f"{method} {_path(url)} answered {reply.status} {said or ''}".strip(),
            )
        return answer


def _check_repository(body: Any) -> dict[str, str | None]:
    path, roots = (body.get("path"), body.get("roots")) if isinstance(body, dict) else (None, 0)
    valid_roots = roots is None or (
        isinstance(roots, list) and all(isinstance(root, str) for root in roots)
    )
    if not isinstance(path, str) or not valid_roots:
        raise LauncherError(400, "bad_request", "path: a string; roots: a list of paths or null")
    return {"path": confined_repository(path, roots)}


def _path(url: str) -> str:
    """A URL's path for messages, with a bootstrap token cut off."""
    path = urlsplit(url).path
    return "/api/bootstrap/…" if path.startswith("/api/bootstrap/") else path


def _save(path: Path, node: LocalNode) -> None:
    temporary = path.with_suffix(".tmp")
    temporary.write_text(json.dumps(asdict(node), indent=2))
    os.replace(temporary, path)


def local_nodes_ca(data_dir: Path) -> LocalCa:
    """The CA that certifies the local nodes of the edge whose data lives in `data_dir`."""
    return LocalCa.ensure(data_dir / LOCAL_CA_DIR)


def local_nodes_service(env: Any, data_dir: Path) -> LocalNodes:
    """The `LOCAL_NODES` binding for a local edge whose data lives in `data_dir`."""
    return LocalNodes(data_dir / "nodes", env, local_nodes_ca(data_dir))
