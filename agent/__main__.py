"""`python -m agent`: read SAM_* from the environment and serve until SIGTERM/SIGINT."""

import argparse
import logging
import os
import sys

from agent.config import AgentConfig
from agent.errors import AgentError, ConfigError
from wire.log_redaction import RedactingFilter
from wire.version import VERSION

EXIT_CONFIG = 2
EXIT_START_FAILED = 1

USAGE = """\
The SAM node agent. Configured only by environment variables (see
docs/protocols/agent-api.md): SAM_NODE_ID and SAM_CONTROL_PLANE_URL are required;
SAM_JWKS_URL, SAM_JWT_ISSUER, SAM_CALLBACK_TOKEN_FILE, SAM_AGENT_HOST, SAM_AGENT_PORT,
SAM_TLS_CERT, SAM_TLS_KEY, SAM_STATE_DIR, SAM_BACKEND, SAM_CLOUD_NODE, SAM_BASE_IMAGE,
SAM_HEARTBEAT_SECONDS, SAM_ORPHAN_GRACE_SECONDS, SAM_TERMINAL_RING_BYTES,
SAM_MAX_SESSIONS, SAM_MAX_FRAME_BYTES, SAM_MAX_FRAMES_PER_SECOND, SAM_CONTAINER_EXEC,
SAM_RUNC_ROOT, SAM_LOG_LEVEL, SAM_CONTAINER_TOOLS, SAM_MODEL_BASE_URL, SAM_AGENT_COMMANDS,
SAM_PERMISSION_TIMEOUT_SECONDS, SAM_PROMPT_TIMEOUT_SECONDS, SAM_SESSION_LOG_BYTES are
optional.
"""


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m agent", description=USAGE)
    parser.add_argument("--version", action="version", version=f"sam-agent {VERSION}")
    parser.add_argument(
        "--check-config", action="store_true", help="parse the configuration, print it, exit"
    )
    args = parser.parse_args(argv)
    try:
        config = AgentConfig.from_environ(os.environ)
    except ConfigError as exc:
        print(f"sam-agent: configuration error: {exc}", file=sys.stderr)
        return EXIT_CONFIG
    if args.check_config:
        print(config)
        return 0
    # DEBUG is for the agent's own lines; libraries (docker, urllib3) stay at INFO.
    logging.basicConfig(
        level=max(logging.getLevelName(config.log_level), logging.INFO),
        format="%(asctime)s %(levelname)s %(name)s %(message)s",
        stream=sys.stderr,
    )
    logging.getLogger("agent").setLevel(config.log_level)
    for handler in logging.getLogger().handlers:  # aiohttp logs malformed headers as sent
        handler.addFilter(RedactingFilter())
    # The server module imports the Docker SDK and the rest: only after the config is good.
    from agent.server import run

    try:
        run(config)
    except OSError as exc:
        # A busy port or an unreadable state dir or certificate: nothing to retry here.
        logging.getLogger("agent").error(
            "agent.start_failed host=%s port=%d error=%s: free the port or fix the path",
            config.host,
            config.port,
            exc,
        )
        return EXIT_START_FAILED
    except AgentError as exc:
        # A part that could not start, e.g. no Docker Engine for the docker backend.
        logging.getLogger("agent").error("agent.start_failed error=%s", exc)
        return EXIT_START_FAILED
    return 0


if __name__ == "__main__":
    sys.exit(main())
