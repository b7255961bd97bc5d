"""`sam`: the command line for running SAM on this machine.

sam dev            start the local edge (API, web app, workspace proxy) and print its URLs
sam upload-agent   put the node agent artifact into the local R2 bucket (new nodes fetch it)
"""

import argparse
import json
import logging
import os
import socket
import sys
from pathlib import Path

import uvicorn
from rich.console import Console
from rich.logging import RichHandler

from devtools import artifacts, preflight
from devtools.local_nodes import local_nodes_ca, local_nodes_service
from twin.http_protocol import KEEP_ALIVE_SECONDS, EdgeHttpProtocol
from twin.private_files import private_dir
from twin.server import LocalEdge
from twin.wrangler import WranglerConfigError, load
from wire.log_redaction import RedactingFilter
from worker.auth.crypto import generate_key
from worker.logs import RequestIdFilter

DEFAULT_PORT = 8787


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="sam", description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    dev = commands.add_parser("dev", help="start SAM locally (local edge + local node provider)")
    dev.add_argument(
        "--port", type=int, default=DEFAULT_PORT, help="port to listen on (%(default)s)"
    )
    dev.add_argument("--host", default="127.0.0.1", help="address to bind (%(default)s)")
    dev.add_argument(
        "--data-dir",
        type=Path,
        default=Path(".sam"),
        help="where all local state lives (%(default)s)",
    )
    dev.add_argument(
        "--config",
        type=Path,
        default=Path("wrangler.toml"),
        help="the worker's wrangler.toml (%(default)s)",
    )
    dev.add_argument("--log-level", default="info", choices=["debug", "info", "warning", "error"])
    dev.add_argument(
        "--var",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="set a worker var, over wrangler.toml and sam dev's own (repeatable), "
        "e.g. --var SAM_GITHUB_BASE_URL=http://127.0.0.1:9000",
    )
    dev.add_argument(
        "--trust-ca",
        action="append",
        default=[],
        type=Path,
        metavar="PEM",
        help="also trust this CA for https to *.localhost upstreams (repeatable); the local "
        "nodes' own CA is always trusted",
    )
    artifacts.add_parser(commands)
    args = parser.parse_args(argv)
    if args.command == "upload-agent":
        return artifacts.upload_command(args)
    return dev_command(args)


def dev_command(args: argparse.Namespace) -> int:
    console = Console(stderr=True)
    _configure_logging(args.log_level, console)
    try:
        config = load(args.config)
    except WranglerConfigError as exc:
        _error(console, f"{exc}\nRun `sam dev` from the project root, or pass --config.")
        return 2
    if not _port_free(args.host, args.port):
        _error(
            console,
            f"{args.host}:{args.port} is already in use. Is another `sam dev` "
            "running? Stop it, or try --port.",
        )
        return 1
    for problem in preflight.problems():
        console.print(f"[yellow]warning:[/] {problem}", soft_wrap=True)
    domain = f"localhost:{args.port}"
    try:
        extra_vars = _parse_vars(args.var)
    except ValueError as exc:
        _error(console, str(exc))
        return 2
    missing = [str(path) for path in args.trust_ca if not path.is_file()]
    if missing:
        _error(console, f"--trust-ca: no such file: {', '.join(missing)}")
        return 2
    data_dir = args.data_dir.resolve()
    edge = LocalEdge(
        config,
        data_dir,
        overrides={
            **dev_secrets(args.data_dir),
            "SAM_DOMAIN": domain,
            "SAM_ENVIRONMENT": "development",
            **extra_vars,
        },
        services={"LOCAL_NODES": local_nodes_service},
        loopback_cas=(local_nodes_ca(data_dir).cert_path, *args.trust_ca),
    )
    server = uvicorn.Server(
        uvicorn.Config(
            edge,
            host=args.host,
            port=args.port,
            lifespan="on",
            access_log=False,
            log_config=None,
            log_level=args.log_level,
            ws_max_size=1024 * 1024,
            http=EdgeHttpProtocol,
            timeout_keep_alive=KEEP_ALIVE_SECONDS,
            # The browser is on this machine too: deflating its frames would only cost CPU.
            ws_per_message_deflate=False,
        )
    )
    _announce_when_up(server, edge, domain, console)
    try:
        server.run()
    except KeyboardInterrupt:  # uvicorn re-raises the Ctrl-C it handled gracefully
        pass
    except SystemExit:  # uvicorn exits when the application fails to start
        _error(console, "the local edge did not start; the reason is logged above.")
        return 1
    console.print("SAM stopped.")
    return 0


def _error(console: Console, message: str) -> None:
    console.print(f"[red]error:[/] {message}", soft_wrap=True)


def _parse_vars(pairs: list[str]) -> dict[str, str]:
    """`--var NAME=VALUE` arguments as a dict; the last of a repeated NAME wins."""
    parsed: dict[str, str] = {}
    for pair in pairs:
        name, sep, value = pair.partition("=")
        if not sep or not name.isidentifier():
            raise ValueError(f"--var takes NAME=VALUE, not {pair!r}")
        parsed[name] = value
    return parsed


def _port_free(host: str, port: int) -> bool:
    with socket.socket() as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError:
            return False
    return True


def _announce_when_up(
    server: uvicorn.Server, edge: LocalEdge, domain: str, console: Console
) -> None:
    startup = server.startup

    async def announce(*args: object, **kwargs: object) -> None:
        await startup(*args, **kwargs)
        if server.started:
            applied = edge.runtime.applied_migrations if edge.runtime else {}
            for binding, names in applied.items():
                for name in names:
                    console.print(f"  migrated {binding}: {name}")
            console.print(
                f"\n[bold green]SAM is running[/]  (data in {edge.data_dir})\n"
                f"  web app   http://app.{domain}/\n"
                f"  API       http://api.{domain}/health\n"
                f"  press Ctrl-C to stop\n"
            )

    server.startup = announce  # type: ignore[method-assign]


def _configure_logging(level: str, console: Console) -> None:
    handler = RichHandler(console=console, show_path=False, markup=False)
    handler.addFilter(RequestIdFilter())
    # uvicorn logs a WebSocket's request line with its `?token=`; no line keeps a credential.
    handler.addFilter(RedactingFilter())
    handler.setFormatter(logging.Formatter("%(name)s [%(request_id)s] %(message)s"))
    logging.basicConfig(level=level.upper(), handlers=[handler], force=True)


DEV_SECRETS_FILE = "dev-secrets.json"
DEV_SECRETS_MODE = 0o600


def dev_secrets(data_dir: Path) -> dict[str, str]:
    """The generated secrets of a local deployment, made on first start and kept after.

    `sam dev` needs no setup, yet what it encrypts must still open after a restart, so
    the key lives next to the data it protects, readable by this user only.
    """
    path = data_dir / DEV_SECRETS_FILE
    private_dir(data_dir)
    try:
        stored = json.loads(path.read_text())
    except FileNotFoundError:
        stored = {}
    except ValueError:
        # A new key would silently orphan every secret sealed with the old one.
        raise SystemExit(
            f"error: {path} is not valid JSON. Restore it; deleting it makes the secrets "
            "saved so far unreadable."
        ) from None
    values = {"SAM_ENCRYPTION_KEY": generate_key(), **stored}
    if values != stored:
        # Written whole to a private temporary file, then renamed: never a partial file,
        # never a moment when the key is readable by others.
        temporary = path.with_suffix(".tmp")
        temporary.unlink(missing_ok=True)
        fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, DEV_SECRETS_MODE)
        with os.fdopen(fd, "w") as file:
            json.dump(values, file, indent=2)
        os.replace(temporary, path)
    return values


if __name__ == "__main__":
    sys.exit(main())
