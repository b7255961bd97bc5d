"""`sam dev` as a user meets it: URLs printed, migrations applied, Ctrl-C stops it cleanly."""

import socket
import subprocess
import sys
from pathlib import Path

from tests.support.edge import ROOT, running_edge, stop


def test_sam_dev_prints_urls_and_stops_cleanly_on_ctrl_c(tmp_path: Path) -> None:
    with running_edge(tmp_path / ".sam") as edge:
        port = edge.port
    assert stop(edge) == 0
    log = edge.log()
    assert f"http://app.localhost:{port}/" in log
    assert f"http://api.localhost:{port}/health" in log
    assert "migrated DATABASE: 0001_initial.sql" in log
    assert "migrated OBSERVABILITY_DATABASE: 0001_errors.sql" in log
    assert "Traceback" not in log


def test_second_start_applies_no_migration_again(tmp_path: Path) -> None:
    with running_edge(tmp_path / ".sam") as first:
        pass
    with running_edge(tmp_path / ".sam") as second:
        pass
    assert "migrated DATABASE: 0001_initial.sql" in first.log()
    assert "migrated" not in second.log()


def test_port_in_use_says_what_to_do(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = subprocess.run(
            [
                sys.executable,
                "-m",
                "devtools.cli",
                "dev",
                "--port",
                str(port),
                "--data-dir",
                str(tmp_path / ".sam"),
            ],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=30,
        )
    assert result.returncode == 1
    assert "already in use" in result.stderr
    assert "try --port" in result.stderr


def test_missing_config_is_a_clear_error(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "devtools.cli", "dev", "--config", str(tmp_path / "nope.toml")],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode == 2
    assert "nope.toml does not exist" in result.stderr


def test_a_missing_trust_ca_file_is_a_clear_error(tmp_path: Path) -> None:
    missing = tmp_path / "no-such-ca.pem"
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "devtools.cli",
            "dev",
            "--data-dir",
            str(tmp_path / ".sam"),
            "--port",
            "0",
            "--trust-ca",
            str(missing),
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode == 2
    assert f"--trust-ca: no such file: {missing}" in result.stderr
