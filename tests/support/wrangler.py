"""Run the project's pinned wrangler offline: the D1 migration and bundle dry-run tests and
the real-Pyodide harness (which loads the exact dry-run bundle) share it."""

import os
import re
import subprocess
import tomllib
from pathlib import Path

import pytest

PROJECT_ROOT = Path(__file__).resolve().parents[2]
WRANGLER = PROJECT_ROOT / "node_modules" / ".bin" / "wrangler"
WRANGLER_CONFIG = tomllib.loads((PROJECT_ROOT / "wrangler.toml").read_text())
ANSI_ESCAPE = re.compile(r"\x1b\[[0-9;]*m")  # wrangler colours its errors even in a pipe
# Below pytest-timeout's limit, so a hung wrangler fails with its own output.
WRANGLER_TIMEOUT_SECONDS = 90


def run_wrangler(tmp_path: Path, *args: str) -> str:
    """Run wrangler from the project root and return its output; fail on a non-zero exit."""
    if not WRANGLER.exists():
        pytest.fail(f"{WRANGLER.relative_to(PROJECT_ROOT)} is missing: run scripts/setup")
    env = {
        **os.environ,
        "CI": "true",  # never prompt: wrangler takes the default answer
        "WRANGLER_SEND_METRICS": "false",
        "WRANGLER_SEND_ERROR_REPORTS": "false",
        "WRANGLER_HIDE_BANNER": "true",  # the banner asks the npm registry for updates
        "WRANGLER_LOG_PATH": str(tmp_path / "wrangler-logs"),
        "XDG_CONFIG_HOME": str(tmp_path / "config"),  # wrangler's metrics consent file
    }
    result = subprocess.run(
        [str(WRANGLER), *args],
        cwd=PROJECT_ROOT,
        env=env,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=WRANGLER_TIMEOUT_SECONDS,
        check=False,
    )
    output = ANSI_ESCAPE.sub("", result.stdout + result.stderr)
    command = " ".join(args)
    assert result.returncode == 0, f"wrangler {command} exited {result.returncode}:\n{output}"
    return output


def dry_run_bundle(tmp_path: Path) -> Path:
    """What `wrangler deploy` would upload (modules and python_modules/), in a folder."""
    outdir = tmp_path / "dist"
    run_wrangler(tmp_path, "deploy", "--dry-run", "--outdir", str(outdir))
    return outdir
