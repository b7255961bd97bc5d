"""AgentConfig.from_environ: defaults, and an error naming the variable for every bad one."""

import dataclasses
import subprocess
import sys
from pathlib import Path

import pytest

from agent.config import (
    CHECKOUT_CONTAINER_TOOLS,
    DEFAULT_MAX_FRAME_BYTES,
    DEFAULT_TERMINAL_RING_BYTES,
    AgentConfig,
)
from agent.errors import ConfigError

ROOT = Path(__file__).resolve().parents[2]
BASE = {"SAM_NODE_ID": "node-1", "SAM_CONTROL_PLANE_URL": "http://api.localhost:8787/"}


def parse(**overrides: str) -> AgentConfig:
    return AgentConfig.from_environ({**BASE, **overrides})


def test_defaults() -> None:
    config = parse()
    assert config.node_id == "node-1"
    assert config.control_plane_url == "http://api.localhost:8787"
    assert config.jwks_url == "http://api.localhost:8787/.well-known/jwks.json"
    assert config.jwt_issuer == "http://api.localhost:8787"
    assert (config.host, config.port) == ("0.0.0.0", 8080)
    assert config.state_dir == Path("/var/lib/sam-agent")
    assert config.callback_token_file == Path("/var/lib/sam-agent/callback-token")
    assert (config.backend, config.cloud_node) == ("docker", False)
    assert config.base_image == "sam-workspace-base:bookworm"
    assert (config.heartbeat_seconds, config.orphan_grace_seconds) == (30.0, 300.0)
    assert config.terminal_ring_bytes == DEFAULT_TERMINAL_RING_BYTES == 262144
    assert (config.max_sessions, config.max_frame_bytes) == (32, DEFAULT_MAX_FRAME_BYTES)
    assert config.max_frames_per_second == 200
    assert config.tls_cert is None and not config.tls
    assert config.container_tools == CHECKOUT_CONTAINER_TOOLS  # this checkout's, installed
    assert (config.model_base_url, config.permission_timeout_seconds) == (
        "https://api.anthropic.com",
        300.0,
    )
    assert (config.prompt_timeout_seconds, config.session_log_bytes) == (3600.0, 8 * 1024 * 1024)


def test_config_is_frozen() -> None:
    with pytest.raises(dataclasses.FrozenInstanceError):
        parse().port = 1  # type: ignore[misc]


def test_every_variable_is_read(tmp_path: Path) -> None:
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    cert.write_text("c")
    key.write_text("k")
    key.chmod(0o600)
    config = parse(
        SAM_JWKS_URL="https://keys.example.com/jwks.json",
        SAM_JWT_ISSUER="https://issuer.example.com",
        SAM_CALLBACK_TOKEN_FILE="/etc/sam-agent/token",
        SAM_AGENT_HOST="127.0.0.1",
        SAM_AGENT_PORT="9443",
        SAM_TLS_CERT=str(cert),
        SAM_TLS_KEY=str(key),
        SAM_STATE_DIR="/srv/sam",
        SAM_BACKEND="HOST",
        SAM_CLOUD_NODE="false",
        SAM_BASE_IMAGE="img:1",
        SAM_HEARTBEAT_SECONDS="0.25",
        SAM_ORPHAN_GRACE_SECONDS="0",
        SAM_TERMINAL_RING_BYTES="4096",
        SAM_MAX_SESSIONS="3",
        SAM_MAX_FRAME_BYTES="2048",
        SAM_MAX_FRAMES_PER_SECOND="7",
        SAM_LOG_LEVEL="debug",
        SAM_CONTAINER_TOOLS="/opt/tools",
        SAM_MODEL_BASE_URL="http://127.0.0.1:9999/",
        SAM_PERMISSION_TIMEOUT_SECONDS="5",
        SAM_PROMPT_TIMEOUT_SECONDS="60",
        SAM_SESSION_LOG_BYTES="65536",
        SAM_AGENT_RESTARTS="0",
        SAM_AGENT_RESTART_WINDOW_SECONDS="60",
        SAM_AGENT_RESTART_BACKOFF_SECONDS="0",
    )
    assert config.jwks_url == "https://keys.example.com/jwks.json"
    assert config.jwt_issuer == "https://issuer.example.com"
    assert config.callback_token_file == Path("/etc/sam-agent/token")
    assert (config.host, config.port) == ("127.0.0.1", 9443)
    assert (config.tls_cert, config.tls_key, config.tls) == (cert, key, True)
    assert config.state_dir == Path("/srv/sam")
    assert (config.backend, config.cloud_node, config.base_image) == ("host", False, "img:1")
    assert (config.heartbeat_seconds, config.orphan_grace_seconds) == (0.25, 0.0)
    assert (config.terminal_ring_bytes, config.max_sessions) == (4096, 3)
    assert (config.max_frame_bytes, config.max_frames_per_second) == (2048, 7)
    assert config.log_level == "DEBUG"
    assert (config.container_tools, config.model_base_url) == (
        Path("/opt/tools"),
        "http://127.0.0.1:9999",
    )
    assert (config.permission_timeout_seconds, config.prompt_timeout_seconds) == (5.0, 60.0)
    assert config.session_log_bytes == 65536
    assert (config.agent_restarts, config.agent_restart_window_seconds) == (0, 60.0)
    assert config.agent_restart_backoff_seconds == 0.0


BAD = [
    ({"SAM_NODE_ID": ""}, "SAM_NODE_ID", "required"),
    ({"SAM_NODE_ID": "../etc"}, "SAM_NODE_ID", "not a node id"),
    ({"SAM_CONTROL_PLANE_URL": ""}, "SAM_CONTROL_PLANE_URL", "required"),
    ({"SAM_CONTROL_PLANE_URL": "ftp://x"}, "SAM_CONTROL_PLANE_URL", "http"),
    ({"SAM_CONTROL_PLANE_URL": "http://x:port"}, "SAM_CONTROL_PLANE_URL", "port"),
    ({"SAM_JWKS_URL": "keys.json"}, "SAM_JWKS_URL", "http"),
    ({"SAM_AGENT_PORT": "http"}, "SAM_AGENT_PORT", "whole number"),
    ({"SAM_AGENT_PORT": "70000"}, "SAM_AGENT_PORT", "between 1 and 65535"),
    ({"SAM_TLS_CERT": "/nonexistent/cert.pem"}, "SAM_TLS_CERT", "does not exist"),
    ({"SAM_STATE_DIR": "relative/dir"}, "SAM_STATE_DIR", "absolute"),
    ({"SAM_BACKEND": "podman"}, "SAM_BACKEND", "docker, host"),
    ({"SAM_CLOUD_NODE": "maybe"}, "SAM_CLOUD_NODE", "boolean"),
    ({"SAM_CLOUD_NODE": "true", "SAM_BACKEND": "host"}, "SAM_BACKEND", "cloud node"),
    ({"SAM_HEARTBEAT_SECONDS": "0"}, "SAM_HEARTBEAT_SECONDS", "positive"),
    ({"SAM_HEARTBEAT_SECONDS": "soon"}, "SAM_HEARTBEAT_SECONDS", "seconds"),
    ({"SAM_ORPHAN_GRACE_SECONDS": "-1"}, "SAM_ORPHAN_GRACE_SECONDS", "positive"),
    ({"SAM_TERMINAL_RING_BYTES": "10"}, "SAM_TERMINAL_RING_BYTES", "at least 1024"),
    ({"SAM_MAX_SESSIONS": "0"}, "SAM_MAX_SESSIONS", "at least 1"),
    ({"SAM_MAX_FRAME_BYTES": "1.5"}, "SAM_MAX_FRAME_BYTES", "whole number"),
    ({"SAM_MAX_FRAMES_PER_SECOND": "0"}, "SAM_MAX_FRAMES_PER_SECOND", "at least 1"),
    ({"SAM_LOG_LEVEL": "loud"}, "SAM_LOG_LEVEL", "DEBUG"),
    ({"SAM_MODEL_BASE_URL": "localhost:9"}, "SAM_MODEL_BASE_URL", "http"),
    ({"SAM_PERMISSION_TIMEOUT_SECONDS": "0"}, "SAM_PERMISSION_TIMEOUT_SECONDS", "positive"),
    ({"SAM_SESSION_LOG_BYTES": "100"}, "SAM_SESSION_LOG_BYTES", "at least 65536"),
    ({"SAM_AGENT_RESTARTS": "-1"}, "SAM_AGENT_RESTARTS", "at least 0"),
    ({"SAM_AGENT_RESTART_WINDOW_SECONDS": "0"}, "SAM_AGENT_RESTART_WINDOW_SECONDS", "positive"),
]


@pytest.mark.parametrize(("overrides", "variable", "words"), BAD)
def test_bad_value_names_its_variable(overrides: dict, variable: str, words: str) -> None:
    with pytest.raises(ConfigError) as error:
        parse(**overrides)
    assert error.value.variable == variable
    assert str(error.value).startswith(f"{variable}: ")
    assert words in str(error.value)


def test_tls_needs_both_files(tmp_path: Path) -> None:
    cert = tmp_path / "cert.pem"
    cert.write_text("c")
    with pytest.raises(ConfigError) as error:
        parse(SAM_TLS_CERT=str(cert))
    assert error.value.variable == "SAM_TLS_KEY"
    assert "both" in str(error.value)


def test_the_process_reports_a_bad_variable_and_exits_2(tmp_path: Path) -> None:
    env = {"PATH": "/usr/bin:/bin", **BASE, "SAM_AGENT_PORT": "eighty"}
    done = subprocess.run(
        [sys.executable, "-m", "agent"], cwd=ROOT, env=env, capture_output=True, text=True
    )
    assert done.returncode == 2
    assert "SAM_AGENT_PORT" in done.stderr and "whole number" in done.stderr


def test_other_acp_agents_are_a_command_per_agent_type() -> None:
    assert parse().agent_commands == {}
    codex = '{"codex": ["/opt/sam/tools/node_modules/.bin/codex-acp", "--acp"]}'
    config = parse(SAM_AGENT_COMMANDS=codex)
    assert config.agent_commands == {
        "codex": ("/opt/sam/tools/node_modules/.bin/codex-acp", "--acp")
    }


@pytest.mark.parametrize(
    "value, words",
    [
        ("not json", "is not JSON"),
        ('["codex"]', "must be a JSON object"),
        ('{"Codex!": ["/bin/codex"]}', "is not an agent type"),
        ('{"codex": []}', "absolute path of its adapter"),
        ('{"codex": "codex-acp"}', "absolute path of its adapter"),
        ('{"codex": ["codex-acp"]}', "absolute path of its adapter"),
        ('{"codex": ["/bin/codex", 3]}', "absolute path of its adapter"),
    ],
)
def test_a_bad_agent_command_names_the_variable(value: str, words: str) -> None:
    with pytest.raises(ConfigError, match="SAM_AGENT_COMMANDS") as refused:
        parse(SAM_AGENT_COMMANDS=value)
    assert words in str(refused.value)
