"""The command line a terminal session runs: what a backend hands the TerminalManager."""

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


@dataclass(frozen=True)
class ShellCommand:
    """A program to start on the agent's PTY.

    `argv[0]` is looked up on PATH. The child's environment is the few
    INHERITED_ENV_NAMES taken from the agent's environment, overridden by `env`
    (put TERM here). `cwd` is where the child starts (None: the agent's working
    directory, e.g. for `docker exec -w`, which sets its own).
    """

    argv: list[str]
    env: dict[str, str] = field(default_factory=dict)
    cwd: str | None = None

    def child_env(self, agent_env: Mapping[str, str]) -> dict[str, str]:
        """The complete environment for the child process."""
        base = {name: agent_env[name] for name in INHERITED_ENV_NAMES if name in agent_env}
        return base | dict(self.env)
