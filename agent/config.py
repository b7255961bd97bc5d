"""The agent's settings, parsed once from SAM_* environment variables.

`AgentConfig.from_environ(os.environ)` returns a frozen config or raises ConfigError naming
the variable that is missing or wrong; nothing falls back silently.
"""

import json
import re
import stat
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

from agent.errors import ConfigError
from wire.agent_session import AGENT_TYPE_PATTERN

BACKENDS = ("docker", "host")
# How the Docker backend's terminals reach their containers (agent/terminals/process.py):
# `runtime` asks the container's runtime (runc) itself, `engine` goes through the Engine's
# API, `auto` takes the runtime when the agent may (root, a runc container), else the Engine.
CONTAINER_EXEC_MODES = ("auto", "runtime", "engine")
# Where dockerd keeps runc's state of its containers: <exec-root>/runtime-runc/<namespace>.
DEFAULT_RUNC_ROOT = "/run/docker/runtime-runc/moby"
DEFAULT_PORT = 8080
DEFAULT_STATE_DIR = "/var/lib/sam-agent"
DEFAULT_BASE_IMAGE = "sam-workspace-base:bookworm"
DEFAULT_HEARTBEAT_SECONDS = 30.0
DEFAULT_ORPHAN_GRACE_SECONDS = 300.0
DEFAULT_TERMINAL_RING_BYTES = 256 * 1024
DEFAULT_MAX_SESSIONS = 32
DEFAULT_MAX_FRAME_BYTES = 64 * 1024
DEFAULT_MAX_FRAMES_PER_SECOND = 200
# Agent sessions (agent/sessions/): the container tools folder (tools/container/README.md)
# is the checkout's in development, else where cloud-init installs it on a VM.
CHECKOUT_CONTAINER_TOOLS = Path(__file__).resolve().parents[1] / "tools" / "container"
VM_CONTAINER_TOOLS = Path("/opt/sam-agent/container-tools")
DEFAULT_MODEL_BASE_URL = "https://api.anthropic.com"
DEFAULT_PERMISSION_TIMEOUT_SECONDS = 300.0
DEFAULT_PROMPT_TIMEOUT_SECONDS = 3600.0
DEFAULT_SESSION_LOG_BYTES = 8 * 1024 * 1024
# An adapter that exits by itself is restarted at most this often within the window: the
# first time at once, then after a backoff that doubles from the base delay.
DEFAULT_AGENT_RESTARTS = 3
DEFAULT_AGENT_RESTART_WINDOW_SECONDS = 300.0
DEFAULT_AGENT_RESTART_BACKOFF_SECONDS = 1.0
# The chat outbox retries a control plane that is down with a doubling delay up to this.
DEFAULT_OUTBOX_RETRY_MAX_SECONDS = 10.0
CALLBACK_TOKEN_FILENAME = "callback-token"
# Group or other may not even read the TLS key (0600 or stricter).
PRIVATE_KEY_FORBIDDEN_BITS = 0o077
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR")
# Node ids end up in URL paths, file names and container labels.
NODE_ID_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")
TRUE_WORDS = ("1", "true", "yes", "on")
FALSE_WORDS = ("0", "false", "no", "off", "")


@dataclass(frozen=True)
class AgentConfig:
    node_id: str
    control_plane_url: str
    jwks_url: str
    jwt_issuer: str
    callback_token_file: Path
    host: str
    port: int
    tls_cert: Path | None
    tls_key: Path | None
    state_dir: Path
    backend: str
    cloud_node: bool
    base_image: str
    heartbeat_seconds: float
    orphan_grace_seconds: float
    terminal_ring_bytes: int
    max_sessions: int
    max_frame_bytes: int
    max_frames_per_second: int
    container_exec: str = "auto"
    runc_root: Path = Path(DEFAULT_RUNC_ROOT)
    log_level: str = "INFO"
    container_tools: Path = VM_CONTAINER_TOOLS
    # The model proxy's upstream when the user's credential names none (their gateway).
    model_base_url: str = DEFAULT_MODEL_BASE_URL
    permission_timeout_seconds: float = DEFAULT_PERMISSION_TIMEOUT_SECONDS
    prompt_timeout_seconds: float = DEFAULT_PROMPT_TIMEOUT_SECONDS
    session_log_bytes: int = DEFAULT_SESSION_LOG_BYTES
    agent_restarts: int = DEFAULT_AGENT_RESTARTS
    agent_restart_window_seconds: float = DEFAULT_AGENT_RESTART_WINDOW_SECONDS
    agent_restart_backoff_seconds: float = DEFAULT_AGENT_RESTART_BACKOFF_SECONDS
    # Agent type → the command that starts its ACP adapter inside the container, beside
    # the built-in claude-code (agent/sessions/tools.py ADAPTERS).
    agent_commands: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    outbox_retry_max_seconds: float = DEFAULT_OUTBOX_RETRY_MAX_SECONDS

    @property
    def tls(self) -> bool:
        return self.tls_cert is not None

    @classmethod
    def from_environ(cls, environ: Mapping[str, str]) -> "AgentConfig":
        env = _Env(environ)
        node_id = env.required("SAM_NODE_ID")
        if not NODE_ID_PATTERN.match(node_id):
            raise ConfigError(
                "SAM_NODE_ID",
                f"{node_id!r} is not a node id (letters, digits, '.', '_', '-'; at most 128)",
            )
        control_plane_url = env.url("SAM_CONTROL_PLANE_URL", None)
        state_dir = Path(env.text("SAM_STATE_DIR", DEFAULT_STATE_DIR))
        if not state_dir.is_absolute():
            raise ConfigError("SAM_STATE_DIR", f"{state_dir} must be an absolute path")
        tls_cert, tls_key = env.optional_file("SAM_TLS_CERT"), env.optional_file("SAM_TLS_KEY")
        if (tls_cert is None) != (tls_key is None):
            missing = "SAM_TLS_KEY" if tls_key is None else "SAM_TLS_CERT"
            raise ConfigError(missing, "set both SAM_TLS_CERT and SAM_TLS_KEY, or neither")
        if tls_key is not None:
            _check_private(tls_key, "SAM_TLS_KEY")
        backend = env.choice("SAM_BACKEND", "docker", BACKENDS)
        cloud_node = env.flag("SAM_CLOUD_NODE", False)
        if cloud_node and backend == "host":
            raise ConfigError(
                "SAM_BACKEND",
                "the host backend is not isolated and is refused on a cloud node "
                "(SAM_CLOUD_NODE=true): use SAM_BACKEND=docker",
            )
        return cls(
            node_id=node_id,
            control_plane_url=control_plane_url,
            jwks_url=env.url("SAM_JWKS_URL", f"{control_plane_url}/.well-known/jwks.json"),
            jwt_issuer=env.text("SAM_JWT_ISSUER", control_plane_url),
            callback_token_file=Path(
                env.text("SAM_CALLBACK_TOKEN_FILE", str(state_dir / CALLBACK_TOKEN_FILENAME))
            ),
            host=env.text("SAM_AGENT_HOST", "0.0.0.0"),
            port=env.integer("SAM_AGENT_PORT", DEFAULT_PORT, minimum=1, maximum=65535),
            tls_cert=tls_cert,
            tls_key=tls_key,
            state_dir=state_dir,
            backend=backend,
            cloud_node=cloud_node,
            base_image=env.text("SAM_BASE_IMAGE", DEFAULT_BASE_IMAGE),
            heartbeat_seconds=env.seconds("SAM_HEARTBEAT_SECONDS", DEFAULT_HEARTBEAT_SECONDS),
            orphan_grace_seconds=env.seconds(
                "SAM_ORPHAN_GRACE_SECONDS", DEFAULT_ORPHAN_GRACE_SECONDS, allow_zero=True
            ),
            terminal_ring_bytes=env.integer(
                "SAM_TERMINAL_RING_BYTES", DEFAULT_TERMINAL_RING_BYTES, minimum=1024
            ),
            max_sessions=env.integer("SAM_MAX_SESSIONS", DEFAULT_MAX_SESSIONS, minimum=1),
            max_frame_bytes=env.integer(
                "SAM_MAX_FRAME_BYTES", DEFAULT_MAX_FRAME_BYTES, minimum=1024
            ),
            max_frames_per_second=env.integer(
                "SAM_MAX_FRAMES_PER_SECOND", DEFAULT_MAX_FRAMES_PER_SECOND, minimum=1
            ),
            container_exec=env.choice("SAM_CONTAINER_EXEC", "auto", CONTAINER_EXEC_MODES),
            runc_root=Path(env.text("SAM_RUNC_ROOT", DEFAULT_RUNC_ROOT)),
            log_level=env.choice("SAM_LOG_LEVEL", "INFO", LOG_LEVELS, upper=True),
            container_tools=Path(env.text("SAM_CONTAINER_TOOLS", str(_default_container_tools()))),
            model_base_url=env.url("SAM_MODEL_BASE_URL", DEFAULT_MODEL_BASE_URL),
            permission_timeout_seconds=env.seconds(
                "SAM_PERMISSION_TIMEOUT_SECONDS", DEFAULT_PERMISSION_TIMEOUT_SECONDS
            ),
            prompt_timeout_seconds=env.seconds(
                "SAM_PROMPT_TIMEOUT_SECONDS", DEFAULT_PROMPT_TIMEOUT_SECONDS
            ),
            session_log_bytes=env.integer(
                "SAM_SESSION_LOG_BYTES", DEFAULT_SESSION_LOG_BYTES, minimum=64 * 1024
            ),
            agent_restarts=env.integer("SAM_AGENT_RESTARTS", DEFAULT_AGENT_RESTARTS, minimum=0),
            agent_restart_window_seconds=env.seconds(
                "SAM_AGENT_RESTART_WINDOW_SECONDS", DEFAULT_AGENT_RESTART_WINDOW_SECONDS
            ),
            agent_restart_backoff_seconds=env.seconds(
                "SAM_AGENT_RESTART_BACKOFF_SECONDS",
                DEFAULT_AGENT_RESTART_BACKOFF_SECONDS,
                allow_zero=True,
            ),
            agent_commands=env.agent_commands("SAM_AGENT_COMMANDS"),
            outbox_retry_max_seconds=env.seconds(
                "SAM_OUTBOX_RETRY_MAX_SECONDS", DEFAULT_OUTBOX_RETRY_MAX_SECONDS
            ),
        )


def _check_private(path: Path, variable: str) -> None:
    """A private key that others can read is as good as leaked: refuse to serve with it."""
    mode = stat.S_IMODE(path.stat().st_mode)
    if mode & PRIVATE_KEY_FORBIDDEN_BITS:
        raise ConfigError(
            variable,
            f"{path} is readable by others (mode {mode:04o}): run chmod 600 {path}, "
            "and replace the key if anyone else may have read it",
        )


def _default_container_tools() -> Path:
    return CHECKOUT_CONTAINER_TOOLS if CHECKOUT_CONTAINER_TOOLS.is_dir() else VM_CONTAINER_TOOLS


class _Env:
    """Typed reads of one environment mapping; every failure names its variable."""

    def __init__(self, environ: Mapping[str, str]) -> None:
        self._environ = environ

    def _raw(self, name: str) -> str | None:
        value = self._environ.get(name)
        return None if value is None or value.strip() == "" else value.strip()

    def has(self, name: str) -> bool:
        return self._raw(name) is not None

    def required(self, name: str) -> str:
        value = self._raw(name)
        if value is None:
            raise ConfigError(name, "is required but not set")
        return value

    def text(self, name: str, default: str) -> str:
        value = self._raw(name)
        return default if value is None else value

    def url(self, name: str, default: str | None) -> str:
        value = self._raw(name) or default
        if value is None:
            raise ConfigError(name, "is required but not set (e.g. https://api.example.com)")
        parts = urlsplit(value)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ConfigError(name, f"{value!r} is not an http(s) URL with a host")
        try:
            parts.port  # noqa: B018 - raises on a port that is not a number
        except ValueError:
            raise ConfigError(name, f"{value!r} has an invalid port") from None
        return value.rstrip("/")

    def integer(self, name: str, default: int, *, minimum: int, maximum: int | None = None) -> int:
        raw = self._raw(name)
        if raw is None:
            return default
        try:
            value = int(raw)
        except ValueError:
            raise ConfigError(name, f"{raw!r} is not a whole number") from None
        if value < minimum or (maximum is not None and value > maximum):
            bound = f"between {minimum} and {maximum}" if maximum else f"at least {minimum}"
            raise ConfigError(name, f"{value} is out of range: must be {bound}")
        return value

    def seconds(self, name: str, default: float, *, allow_zero: bool = False) -> float:
        raw = self._raw(name)
        if raw is None:
            return default
        try:
            value = float(raw)
        except ValueError:
            raise ConfigError(name, f"{raw!r} is not a number of seconds") from None
        if value != value or value < 0 or (value == 0 and not allow_zero):
            raise ConfigError(name, f"{raw!r} must be a positive number of seconds")
        return value

    def agent_commands(self, name: str) -> dict[str, tuple[str, ...]]:
        """A JSON object: agent type → its adapter's argv inside the container, e.g.
        {"codex": ["/opt/sam/tools/node_modules/.bin/codex-acp"]}."""
        raw = self._raw(name)
        if raw is None:
            return {}
        try:
            parsed = json.loads(raw)
        except ValueError as exc:
            raise ConfigError(name, f"is not JSON: {exc}") from None
        if not isinstance(parsed, dict):
            raise ConfigError(name, 'must be a JSON object: {"agent-type": ["/path", "arg"]}')
        commands: dict[str, tuple[str, ...]] = {}
        for agent, argv in parsed.items():
            if not re.fullmatch(AGENT_TYPE_PATTERN, agent):
                raise ConfigError(
                    name, f"{agent!r} is not an agent type (a-z, 0-9, '-'; 32 at most)"
                )
            if (
                not isinstance(argv, list)
                or not argv
                or not all(isinstance(arg, str) and arg for arg in argv)
                or not argv[0].startswith("/")
            ):
                raise ConfigError(
                    name,
                    f"{agent!r} needs a list of strings whose first is the absolute path of "
                    "its adapter inside the container",
                )
            commands[agent] = tuple(argv)
        return commands

    def flag(self, name: str, default: bool) -> bool:
        raw = self._environ.get(name)
        if raw is None:
            return default
        word = raw.strip().lower()
        if word in TRUE_WORDS:
            return True
        if word in FALSE_WORDS:
            return False
        raise ConfigError(name, f"{raw!r} is not a boolean (true/false)")

    def choice(self, name: str, default: str, choices: tuple[str, ...], upper: bool = False) -> str:
        raw = self._raw(name)
        value = default if raw is None else (raw.upper() if upper else raw.lower())
        if value not in choices:
            raise ConfigError(name, f"{raw!r} must be one of {', '.join(choices)}")
        return value

    def optional_file(self, name: str) -> Path | None:
        raw = self._raw(name)
        if raw is None:
            return None
        path = Path(raw)
        if not path.is_file():
            raise ConfigError(name, f"{path} does not exist or is not a file")
        return path
