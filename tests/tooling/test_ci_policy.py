"""The suite's CI policy: with CI set, a skipped test fails the run."""

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SKIPPING = """
import pytest

def test_needs_a_component_that_is_missing():
    pytest.skip("the widget daemon is not installed")

@pytest.mark.xfail(reason="a known failure, not a skip", strict=True)
def test_a_known_failure():
    raise AssertionError
"""


def run(tmp_path: Path, ci: str | None) -> subprocess.CompletedProcess[str]:
    (tmp_path / "test_skipping.py").write_text(SKIPPING)
    env = {key: value for key, value in os.environ.items() if key != "CI"}
    if ci is not None:
        env["CI"] = ci
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-p",
            "tests.support.ci_policy",
            "-q",
            "-p",
            "no:cacheprovider",
            "--rootdir",
            str(tmp_path),
            str(tmp_path / "test_skipping.py"),
        ],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_a_skip_fails_the_run_in_ci_and_names_what_was_missing(tmp_path: Path) -> None:
    done = run(tmp_path, "true")
    assert done.returncode == 1, done.stdout
    assert "1 failed, 1 xfailed" in done.stdout
    assert "skipped in CI" in done.stdout and "the widget daemon is not installed" in done.stdout


def test_locally_a_skip_stays_a_skip(tmp_path: Path) -> None:
    done = run(tmp_path, None)
    assert done.returncode == 0, done.stdout
    assert "1 skipped, 1 xfailed" in done.stdout


def test_the_base_image_fixtures_fail_in_ci_when_docker_cannot_show_the_image(
    tmp_path: Path,
) -> None:
    # The Engine hidden (DOCKER_HOST points at nothing): the base image cannot be found.
    env = {
        **{key: value for key, value in os.environ.items() if key != "CI"},
        "CI": "true",
        "DOCKER_HOST": f"unix://{tmp_path / 'no-engine.sock'}",
    }
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-q",
            "-p",
            "no:cacheprovider",
            "tests/agent/terminals/test_docker_exec.py::"
            "test_paused_reading_holds_the_process_back_and_loses_nothing",
            "tests/agent/terminals/test_runtime_exec.py::"
            "test_the_user_is_resolved_in_the_containers_own_files",
        ],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    # A fixture that skips in CI is an error at setup: the run fails, naming the image.
    assert done.returncode == 1, done.stdout
    assert "2 errors" in done.stdout, done.stdout
    assert "skipped in CI" in done.stdout and "is not built (scripts/build-image" in done.stdout
