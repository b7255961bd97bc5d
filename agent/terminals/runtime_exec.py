"""A command in a container on a TTY whose master the agent holds, exec'd by runc itself.

Through the Engine's API (agent/terminals/docker_exec.py) every byte of a terminal crosses the TTY,
containerd's shim, a FIFO, dockerd and a socket, and a keystroke's echo makes that trip
twice (bench/bench_terminal.py measures it). `docker exec` ends in the shim running
`runc exec` with the container's process spec; the agent runs that last step itself, with
the same spec (the bundle's config.json: capabilities, seccomp, AppArmor, rlimits,
environment) and `--console-socket`, through which runc hands over the master of the TTY
it creates in the container. From there it is a PtyProcess, like a shell on the host.

runc hands the master over only when it detaches: it exits once the shell runs, and the
orphaned shell comes to the agent, a child subreaper (agent/reaper.py), which collects its
exit status as it would a child's.

Only root may drive runc against dockerd's state, and only containers that run on runc
have any: elsewhere (an agent in the docker group, a gVisor container) `start` raises
RuntimeUnavailable and terminals go through the Engine's API.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import shutil
import socket
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

from agent import reaper
from agent.docker_api import EngineAPI, EngineError
from agent.shell import ShellCommand
from agent.terminals.pty import READ_BURST_BYTES, PtyProcess, SpawnError, clamp_size

CONSOLE_WAIT_SECONDS = 10.0  # from `runc exec` to the TTY's master in our hands
MAX_MESSAGE_BYTES = 4096
# runc logs as logrus text: time="..." level=error msg="exec failed: ..."
RUNC_MESSAGE = re.compile(r'msg="((?:[^"\\]|\\.)*)"')


class RuntimeUnavailable(Exception):
    """runc cannot exec into this container from here; the message says why."""


@dataclass(frozen=True)
class RuncContainer:
    id: str
    pid: int  # the container's first process, in our pid namespace
    bundle: Path  # holds the container's OCI spec, config.json
    user: str  # the image's or `docker run -u`'s user, resolved anew at each exec
    group_add: tuple[str, ...]  # `docker run --group-add`: every exec's groups too

    @property
    def root(self) -> Path:
        """The container's filesystem, as its first process sees it."""
        return Path(f"/proc/{self.pid}/root")


async def start(
    command: ShellCommand,
    cols: int,
    rows: int,
    on_output: Callable[[bytes], None],
    runc_root: Path,
    read_burst_bytes: int = READ_BURST_BYTES,
) -> PtyProcess:
    """Exec `command` in its container on a new TTY there; raises RuntimeUnavailable (use
    the Engine's API) or SpawnError (neither could start it)."""
    assert command.container is not None
    runc = shutil.which("runc")
    if os.geteuid() != 0:
        raise RuntimeUnavailable("only root may run runc against dockerd's containers")
    if runc is None:
        raise RuntimeUnavailable("no runc on PATH")
    if not runc_root.is_dir():
        raise RuntimeUnavailable(f"no {runc_root}: set SAM_RUNC_ROOT to dockerd's runc state")
    container = await _find(command.container, runc, runc_root)
    try:
        spec = json.loads((container.bundle / "config.json").read_bytes())
    except (OSError, ValueError) as exc:
        raise RuntimeUnavailable(f"cannot read the container's OCI spec: {exc}") from exc
    cols, rows = clamp_size(cols, rows)
    process = _process_spec(spec["process"], command, container, cols, rows)
    try:
        reaper.become_subreaper()
    except OSError as exc:
        raise RuntimeUnavailable(f"the agent cannot adopt the shell: {exc}") from exc
    pid, master = await _exec(runc, runc_root, container.id, process)
    return PtyProcess(pid, master, cols, rows, on_output, read_burst_bytes)


async def _find(name: str, runc: str, runc_root: Path) -> RuncContainer:
    """The running container `name` (an id or a name), as runc knows it."""
    try:
        api = await EngineAPI.connect(os.environ)
        info = await api.call("GET", f"/containers/{quote(name)}/json")
    except EngineError as exc:
        raise SpawnError(f"cannot start a shell in container {name[:12]}: {exc}") from exc
    runtime = info["HostConfig"].get("Runtime") or "runc"
    if runtime != "runc":
        raise RuntimeUnavailable(f"container {name[:12]} runs on {runtime}, not runc")
    if not info["State"].get("Running"):
        raise SpawnError(f"container {name[:12]} is not running: start the workspace")
    state = await asyncio.create_subprocess_exec(
        runc, "--root", str(runc_root), "state", info["Id"],
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    out, err = await state.communicate()
    if state.returncode != 0:
        raise RuntimeUnavailable(f"runc does not know container {name[:12]}: {_message(err)}")
    known = json.loads(out)
    return RuncContainer(
        id=known["id"],
        pid=known["pid"],
        bundle=Path(known["bundle"]),
        user=info["Config"].get("User") or "",
        group_add=tuple(info["HostConfig"].get("GroupAdd") or ()),
    )


def _process_spec(
    base: dict[str, Any], command: ShellCommand, container: RuncContainer, cols: int, rows: int
) -> dict[str, Any]:
    """The container's own process spec, running `command` instead, as `docker exec` would:
    the container's environment plus the command's, as the named user or the container's
    (looked up now, so that groups joined since the container started count)."""
    env = dict(item.split("=", 1) for item in base.get("env", []) if "=" in item)
    env |= command.env
    process = dict(base)
    process.update(
        terminal=True,
        consoleSize={"height": rows, "width": cols},
        args=list(command.argv),
        env=[f"{name}={value}" for name, value in env.items()],
        cwd=command.cwd or base.get("cwd") or "/",
    )
    user = command.user or container.user
    if user:
        process["user"] = _exec_user(container.root, user, container.group_add)
    return process


def _exec_user(root: Path, spec: str, group_add: tuple[str, ...] = ()) -> dict[str, Any]:
    """`user`, `uid`, `user:group` or `uid:gid` as ids, by the container's /etc/passwd and
    /etc/group, with the user's groups there: what Docker makes of an exec's User."""
    name, _, group = spec.partition(":")
    passwd, groups = _etc_file(root, "passwd"), _etc_file(root, "group")
    entry = next((e for e in passwd if _names(e, name)), None)
    if entry is not None:
        user_name, uid, gid = entry[0], int(entry[2]), int(entry[3]) if entry[3].isdigit() else 0
    elif name.isdigit():
        user_name, uid, gid = "", int(name), 0
    else:
        raise SpawnError(f"no user {name!r} in the container's /etc/passwd")
    if group:
        found = next((e for e in groups if _names(e, group)), None)
        if found is None and not group.isdigit():
            raise SpawnError(f"no group {group!r} in the container's /etc/group")
        gid = int(found[2]) if found is not None else int(group)
    # Docker's rule: a named group replaces the user's memberships, it is not added to them.
    joined = user_name and not group
    member_of = [int(e[2]) for e in groups if joined and user_name in e[3].split(",")]
    for added in group_add:
        found = next((e for e in groups if _names(e, added)), None)
        if found is None and not added.isdigit():
            raise SpawnError(f"no group {added!r} (--group-add) in the container's /etc/group")
        member_of.append(int(found[2]) if found is not None else int(added))
    return {"uid": uid, "gid": gid, "additionalGids": member_of}


def _names(entry: list[str], wanted: str) -> bool:
    """Whether a passwd or group line is the one `wanted` names, by name or by number."""
    return entry[0] == wanted or (wanted.isdigit() and entry[2] == wanted)


def _etc_file(root: Path, name: str) -> list[list[str]]:
    """The well-formed lines of the container's /etc/<name>, split on ':' (none if it has
    no such file). A symlink on the way would resolve against the agent's root, not the
    container's: that container's users are left to the Engine to resolve."""
    try:
        etc = os.open(root / "etc", os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW)
        try:
            fd = os.open(name, os.O_RDONLY | os.O_NOFOLLOW, dir_fd=etc)
        finally:
            os.close(etc)
        with open(fd, encoding="utf-8", errors="replace") as file:
            lines = file.read().splitlines()
    except FileNotFoundError:
        return []
    except OSError as exc:  # ELOOP, ENOTDIR: a symlink
        raise RuntimeUnavailable(
            f"cannot read the container's /etc/{name}: {exc.strerror}"
        ) from exc
    fields = (line.split(":") for line in lines if not line.startswith("#"))
    return [f for f in fields if len(f) >= 4 and f[2].isdigit()]


async def _exec(
    runc: str, runc_root: Path, container_id: str, process: dict[str, Any]
) -> tuple[int, int]:
    """Run `runc exec --detach` with `process`; the shell's pid and its TTY's master."""
    with tempfile.TemporaryDirectory(prefix="sam-exec-") as scratch:  # 0700: ours alone
        spec_file, pid_file = Path(scratch, "process.json"), Path(scratch, "pid")
        spec_file.write_text(json.dumps(process))
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as listener:
            listener.bind(str(Path(scratch, "console.sock")))
            listener.listen(1)
            listener.setblocking(False)
            runc_exec = await asyncio.create_subprocess_exec(
                runc, "--root", str(runc_root), "exec", "--detach",
                "--process", str(spec_file),
                "--console-socket", str(Path(scratch, "console.sock")),
                "--pid-file", str(pid_file),
                container_id,
                stdin=asyncio.subprocess.DEVNULL,
                stdout=asyncio.subprocess.DEVNULL,
                stderr=asyncio.subprocess.PIPE,
            )  # fmt: skip
            master = await _receive_master(listener, runc_exec)
        try:
            _, err = await asyncio.wait_for(runc_exec.communicate(), CONSOLE_WAIT_SECONDS)
        except TimeoutError:
            runc_exec.kill()
            err = b"runc did not finish"
        if runc_exec.returncode != 0 or master is None:
            if master is not None:
                os.close(master)
            program = process["args"][0]
            raise SpawnError(f"cannot start {program!r} in the container: {_message(err)}")
        return int(pid_file.read_text()), master


async def _receive_master(
    listener: socket.socket, runc_exec: asyncio.subprocess.Process
) -> int | None:
    """The TTY master runc sends over the console socket; None if runc ends first."""
    loop = asyncio.get_running_loop()
    accepted = asyncio.ensure_future(loop.sock_accept(listener))
    ended = asyncio.ensure_future(runc_exec.wait())
    await asyncio.wait(
        {accepted, ended}, timeout=CONSOLE_WAIT_SECONDS, return_when=asyncio.FIRST_COMPLETED
    )
    ended.cancel()
    if not accepted.done():
        accepted.cancel()
        return None
    connection, _ = accepted.result()
    with connection:
        async with asyncio.timeout(CONSOLE_WAIT_SECONDS):
            while True:
                try:
                    _, fds, _, _ = socket.recv_fds(connection, MAX_MESSAGE_BYTES, 1)
                    return fds[0] if fds else None
                except BlockingIOError:
                    readable = loop.create_future()
                    loop.add_reader(connection, readable.set_result, None)
                    try:
                        await readable
                    finally:
                        loop.remove_reader(connection)


def _message(stderr: bytes) -> str:
    """What runc said went wrong: the last `msg="..."` of its log, else its output."""
    text = stderr.decode("utf-8", "replace").strip()
    found = RUNC_MESSAGE.findall(text)
    if found:
        return found[-1].replace('\\"', '"').replace("\\\\", "\\")
    return text[-500:] or "no message"
