"""The suite's last check: a token in any log the run produced fails the run."""

import os
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
LOGGING = """
from pathlib import Path

def test_a_service_logs(tmp_path: Path) -> None:
    (tmp_path / "edge-1234.log").write_text(
        "http.request path=/x status=200\\n"
        + "http.request path=/y token=" + {token!r} + "\\n"
    )
"""
JWT = "eyJhbGciOiJFUzI1NiJ9.eyJhdWQiOiJzYW06dGVybWluYWwifQ.c2lnbmF0dXJlLWJ5dGVzLWhlcmU"


@pytest.fixture
def outside() -> Iterator[Path]:
    """A folder outside this run's own base temp dir, whose logs this run's scan reads."""
    with tempfile.TemporaryDirectory(prefix="sam-log-scan-") as folder:
        yield Path(folder)


def run(tmp_path: Path, token: str) -> subprocess.CompletedProcess[str]:
    (tmp_path / "test_logging.py").write_text(LOGGING.format(token=token))
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-p",
            "tests.support.log_scan",
            "-q",
            "-p",
            "no:cacheprovider",
            "--rootdir",
            str(tmp_path),
            "--basetemp",
            str(tmp_path / "base"),
            str(tmp_path / "test_logging.py"),
        ],
        cwd=ROOT,
        env=dict(os.environ),
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_a_jwt_or_an_api_token_in_a_log_fails_the_run_and_is_shown_cut_short(
    outside: Path,
) -> None:
    for token in (JWT, "sam_pat_" + "Q" * 43):
        done = run(outside, token)
        assert done.returncode == 1, done.stdout
        assert "1 passed" in done.stdout
        assert "tokens in the logs this run produced" in done.stdout
        assert "edge-1234.log:2: " + token[:12] + "…" in done.stdout
        assert token not in done.stdout


def test_a_log_without_tokens_passes(outside: Path) -> None:
    done = run(outside, "not-a-token")
    assert done.returncode == 0, done.stdout
