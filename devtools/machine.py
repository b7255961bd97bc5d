"""What the local node launcher does on this machine itself: free ports, callback-token
files, agents a crashed edge left running, the containers a node's agent made, and whether
a Docker Engine answers.
"""

import asyncio
import contextlib
import logging
import os
import shutil
import signal
import socket
import tempfile
from enum import StrEnum
from pathlib import Path

log = logging.getLogger("sam.local.nodes")

TOKEN_FILE_MODE = 0o600
STOP_TIMEOUT_SECONDS = 10.0
POLL_SECONDS = 0.2
DOCKER_PROBE_TIMEOUT_SECONDS = 5.0


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def port_free(port: int) -> bool:
    with socket.socket() as probe:
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def write_token_file(path: Path, token: str) -> None:
    """0600 from the start, replaced atomically (the agent may be reading it)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, temporary = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    os.fchmod(fd, TOKEN_FILE_MODE)
    with os.fdopen(fd, "w") as file:
        file.write(token + "\n")
    os.replace(temporary, path)


async def end_stale_agent(pid: int | None, node_id: str) -> None:
    """An agent left running by an edge that crashed: stop it before starting anew."""
    if pid is None:
        return
    try:
        environ = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
    except OSError:
        return  # gone (or not ours to read)
    if f"SAM_NODE_ID={node_id}".encode() not in environ:
        return  # the pid was reused by something else
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGTERM)
    loop = asyncio.get_running_loop()
    deadline = loop.time() + STOP_TIMEOUT_SECONDS
    while Path(f"/proc/{pid}").exists() and loop.time() < deadline:
        await asyncio.sleep(POLL_SECONDS)
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGKILL)


async def remove_containers(node_id: str) -> None:
    """Remove the containers the node's agent made (labelled `sam.node=<id>`), then their
    networks (one per workspace, docs/sandbox.md), as a VM's go with it."""
    if shutil.which("docker") is None:
        return
    label = f"label=sam.node={node_id}"
    containers = await _docker_ids("ps", "--all", "--quiet", "--filter", label)
    if containers:
        await _docker("rm", "--force", "--volumes", *containers)
    networks = await _docker_ids("network", "ls", "--quiet", "--filter", label)
    if networks:
        await _docker("network", "rm", *networks)
    log.info(
        "local_node.containers_removed node_id=%s count=%d networks=%d",
        node_id,
        len(containers),
        len(networks),
    )


async def _docker_ids(*argv: str) -> list[str]:
    listed = await asyncio.create_subprocess_exec(
        "docker", *argv, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.DEVNULL
    )
    output, _ = await listed.communicate()
    return output.decode().split()


async def _docker(*argv: str) -> None:
    done = await asyncio.create_subprocess_exec(
        "docker", *argv, stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL
    )
    await done.wait()


class DockerProbe(StrEnum):
    ANSWERS = "answers"
    ABSENT = "absent"  # no docker command, or `docker info` says no engine runs
    SLOW = "slow"  # `docker info` did not finish in time: an engine that may be there


async def probe_docker() -> DockerProbe:
    """Whether a Docker Engine answers `docker info` within DOCKER_PROBE_TIMEOUT_SECONDS."""
    if shutil.which("docker") is None:
        return DockerProbe.ABSENT
    try:
        probe = await asyncio.create_subprocess_exec(
            "docker",
            "info",
            "--format",
            "{{.ServerVersion}}",
            stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.DEVNULL,
        )
    except OSError:
        return DockerProbe.ABSENT
    try:
        status = await asyncio.wait_for(probe.wait(), DOCKER_PROBE_TIMEOUT_SECONDS)
    except TimeoutError:
        probe.kill()
        await probe.wait()
        return DockerProbe.SLOW
    return DockerProbe.ANSWERS if status == 0 else DockerProbe.ABSENT
