"""The devcontainer policy: a repository's devcontainer.json, accepted key by key.

A repository is code from anyone, and its devcontainer.json is honoured by the
devcontainer CLI with the node's privileges: `initializeCommand` runs on the host as the
agent's user (root on a VM), `mounts` bind host paths, `privileged`/`capAdd`/`runArgs`
widen the container. So SAM reads the repository's configuration with the CLI's own
parser, keeps only the properties below (checking the values of those that can reach the
host), and hands the CLI a sanitized copy written outside the checkout; anything else is
refused with a message that names it, unless the node's owner trusts the repository's
devcontainer (the workspace's `trusted_devcontainer`). SAM's own additions (its network,
its capability drops, its tools mount) are not the repository's and pass no policy.
"""

from __future__ import annotations

import json
from collections.abc import Collection, Iterator, Mapping
from pathlib import Path
from typing import Any

from agent.errors import ContainerError

STEP = "devcontainer policy"
# Where the CLI looks, in its order.
CONFIG_FILES = (Path(".devcontainer") / "devcontainer.json", Path(".devcontainer.json"))
# What the CLI's read-configuration adds that is no property of the user's.
CLI_ADDED = frozenset({"configFilePath"})
SAFE_PROPERTIES = frozenset(
    {
        "$schema",
        "name",
        "image",
        "build",  # checked: no options, files inside the checkout
        "runArgs",  # checked: SAFE_RUN_FLAGS only
        "mounts",  # checked: tmpfs only
        "init",
        "remoteUser",
        "containerUser",
        "remoteEnv",
        "containerEnv",
        "updateRemoteUserUID",
        "userEnvProbe",
        "overrideCommand",
        "shutdownAction",
        "workspaceFolder",
        "forwardPorts",
        "portsAttributes",
        "otherPortsAttributes",
        "onCreateCommand",
        "updateContentCommand",
        "postCreateCommand",
        "postStartCommand",
        "postAttachCommand",
        "waitFor",
        "hostRequirements",
        "customizations",
        "secrets",
    }
)
SAFE_BUILD_KEYS = frozenset({"dockerfile", "context", "args", "target", "cacheFrom"})
# `docker run` flags that change nothing but the container itself; value-taking ones may
# be written `--flag value` or `--flag=value`.
SAFE_RUN_FLAGS = frozenset(
    {"--env", "-e", "--hostname", "--add-host", "--shm-size", "--memory", "--memory-swap"}
    | {"--cpus", "--cpu-shares", "--pids-limit", "--workdir", "-w", "--user", "-u"}
)
SAFE_RUN_SWITCHES = frozenset({"--init", "--tty", "-t", "--interactive", "-i"})
HINT = (
    "remove it from the repository's devcontainer.json, or, if you own this node and trust "
    "the repository, create the workspace with trusted_devcontainer"
)


def refused(what: str, why: str) -> ContainerError:
    return ContainerError(
        f"devcontainer.json asks for {what} ({why}), which SAM refuses by default",
        step=STEP,
        hint=HINT,
    )


def config_file(checkout: Path, *, trusted: bool = False) -> Path | None:
    """The repository's devcontainer.json, never a link out of the checkout (unless the
    node's owner trusts the repository)."""
    root = checkout.resolve()
    for relative in CONFIG_FILES:
        path = checkout / relative
        if not (path.is_symlink() or path.exists() or path.parent.is_symlink()):
            continue
        resolved = path.resolve()
        if not trusted and not resolved.is_relative_to(root):
            raise refused(str(relative), "a link to a file outside the repository")
        if resolved.is_file():
            return path
    return None


def sanitize(
    config: dict[str, Any], config_path: Path, checkout: Path, *, trusted: bool
) -> dict[str, Any]:
    """The configuration to hand the CLI from `--override-config` (written elsewhere), with
    build paths made absolute since they were relative to `config_path`."""
    accepted: dict[str, Any] = {}
    for key, value in config.items():
        if key in CLI_ADDED:
            continue
        if not trusted:
            _check(key, value)
        accepted[key] = value
    if isinstance(accepted.get("build"), dict):
        accepted["build"] = _anchored_build(accepted["build"], config_path, checkout, trusted)
    compose = accepted.get("dockerComposeFile")  # only ever here when trusted
    if isinstance(compose, (str, list)):
        files = [compose] if isinstance(compose, str) else compose
        accepted["dockerComposeFile"] = [str((config_path.parent / f).resolve()) for f in files]
    return accepted


def sam_run_args(config: dict[str, Any], sam_args: list[str]) -> list[str]:
    """SAM's runArgs after the repository's. A trusted configuration that chose its own
    network or added a capability SAM drops keeps its choice (the owner asked for it)."""
    own = [str(arg) for arg in config.get("runArgs") or []]
    chose_network = any(_flag(arg) in ("--network", "--net") for arg in own)
    added = {str(cap).upper().removeprefix("CAP_") for cap in config.get("capAdd") or []}
    kept: list[str] = []
    pairs = iter(sam_args)
    for flag in pairs:
        value = next(pairs)
        if (flag == "--network" and chose_network) or (flag == "--cap-drop" and value in added):
            continue
        kept += [flag, value]
    return own + kept


def verify_container(
    inspect: Mapping[str, Any],
    *,
    network: str,
    binds: Collection[str],
    volume_devices: Mapping[str, str | None],
) -> None:
    """What the container really got, checked after `up`: the image's devcontainer.metadata
    label and features add properties the repository's file never named. `binds` are the
    host paths it may have (the checkout); `volume_devices` the host path behind each
    of its volumes (None for a plain one; SAM's own are left out by the caller)."""
    host = inspect.get("HostConfig") or {}
    why = "the image's devcontainer.metadata label or a feature asks for it"
    if host.get("Privileged"):
        raise refused("privileged", why)
    if host.get("CapAdd"):
        raise refused(f"capAdd {' '.join(host['CapAdd'])}", why)
    if host.get("SecurityOpt"):
        raise refused(f"securityOpt {' '.join(host['SecurityOpt'])}", why)
    if host.get("Devices"):
        raise refused("devices", why)
    for key, flag in (("PidMode", "--pid"), ("IpcMode", "--ipc"), ("UTSMode", "--uts")):
        if host.get(key) == "host":
            raise refused(f"{flag} host", why)
    if host.get("UsernsMode") == "host":
        raise refused("--userns host", why)
    if host.get("NetworkMode") != network:
        raise refused(f"--network {host.get('NetworkMode')}", why)
    for mount in inspect.get("Mounts") or []:
        kind, source = mount.get("Type"), str(mount.get("Source", ""))
        if kind == "bind" and source not in binds:
            raise refused(f"mounts (a bind of {source})", why)
        if kind == "volume" and volume_devices.get(str(mount.get("Name"))):
            raise refused(f"mounts (volume {mount.get('Name')} over a host path)", why)


def _check(key: str, value: Any) -> None:
    if key not in SAFE_PROPERTIES:
        raise refused(key, _WHY.get(key, "not on SAM's list of safe properties"))
    if key == "runArgs":
        _check_run_args(value)
    elif key == "mounts":
        for mount in value if isinstance(value, list) else [value]:
            kind = _mount_type(mount)
            if kind != "tmpfs":
                raise refused(f"mounts ({json.dumps(mount)[:120]})", f"a {kind} mount")
    elif key == "build":
        if not isinstance(value, dict):
            raise refused("build", "not an object")
        for build_key in value:
            if build_key not in SAFE_BUILD_KEYS:
                raise refused(f"build.{build_key}", "docker build options reach the host")


def _check_run_args(value: Any) -> None:
    if not isinstance(value, list) or not all(isinstance(arg, str) for arg in value):
        raise refused("runArgs", "not a list of strings")
    args = iter(value)
    for arg in args:
        flag = _flag(arg)
        if flag in SAFE_RUN_SWITCHES:
            continue
        if flag in SAFE_RUN_FLAGS:
            if "=" not in arg and next(args, None) is None:
                raise refused(f"runArgs {arg}", "a flag without its value")
            continue
        shown = arg if "=" in arg else f"{arg} {next(args, '')}".strip()
        raise refused(f"runArgs {shown}", "outside the safe subset of docker run flags")


def _flag(arg: str) -> str:
    return arg.split("=", 1)[0]


def _mount_type(mount: Any) -> str:
    if isinstance(mount, dict):
        return str(mount.get("type", "bind"))
    fields = dict(_key_values(str(mount)))
    return fields.get("type", "volume")  # docker run --mount's default


def _key_values(text: str) -> Iterator[tuple[str, str]]:
    for part in text.split(","):
        key, _, value = part.partition("=")
        yield key.strip(), value.strip()


def _anchored_build(
    build: dict[str, Any], config_path: Path, checkout: Path, trusted: bool
) -> dict[str, Any]:
    """`dockerfile` and `context` as absolute paths, inside the checkout unless trusted."""
    anchored = dict(build)
    base = config_path.parent
    for key in ("dockerfile", "context"):
        if key not in build:
            continue
        path = (base / str(build[key])).resolve()
        if not trusted and not path.is_relative_to(checkout.resolve()):
            raise refused(f"build.{key} ({build[key]})", "a path outside the repository")
        anchored[key] = str(path)
    if "context" not in build:  # the CLI's default: the config's own folder
        anchored["context"] = str(base.resolve())
    return anchored


_WHY = {
    "initializeCommand": "it runs on the node itself, as the agent's user",
    "dockerComposeFile": "a compose file can ask for anything, privileged included",
    "workspaceMount": "it chooses what of the host is mounted",
    "privileged": "a privileged container is root on the host",
    "capAdd": "extra capabilities widen the container",
    "securityOpt": "it can switch off the container's confinement",
    "features": "features are fetched from registries and may ask for privileges",
    "appPort": "it publishes ports on the host",
}
