"""The command a terminal session runs: what a backend hands the TerminalManager."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

# Only these reach a shell from the agent's own environment: enough to find `docker`
# and to have a sane locale, never the agent's configuration (SAM_*) or secrets.
INHERITED_ENV_NAMES = (
    "PATH",
    "HOME",
    "USER",
    "LOGNAME",
    "LANG",
    "LC_ALL",
    "LC_CTYPE",
    "TZ",
    "DOCKER_HOST",
    "DOCKER_CONFIG",
)
# Every process of a terminal session carries SAM_TERMINAL_SESSION=<workspace>:<session> in
# its environment: closing recognises a shell in a container by it (agent/terminals/docker_exec.py),
# since ending the attached stream does not end the process there.
SESSION_TAG_ENV = "SAM_TERMINAL_SESSION"


@dataclass(frozen=True)
class ShellCommand:
    """A program to start on a terminal: on the agent's PTY, or in a container.

    Without `container`: `argv[0]` is looked up on PATH; the child's environment is the
    few INHERITED_ENV_NAMES taken from the agent's environment, overridden by `env` (put
    TERM here); `cwd` is where it starts (None: the agent's working directory).

    With `container` (an id or name): `argv` runs in that container, on a TTY of its
    own, as `user` (None: the image's user) in `cwd` (None: the image's directory),
    with the container's environment plus `env`.
    """

    argv: list[str]
    env: dict[str, str] = field(default_factory=dict)
    cwd: str | None = None
    container: str | None = None
    user: str | None = None

    def child_env(self, agent_env: Mapping[str, str]) -> dict[str, str]:
        """The complete environment for the child process."""
        base = {name: agent_env[name] for name in INHERITED_ENV_NAMES if name in agent_env}
        return base | dict(self.env)
