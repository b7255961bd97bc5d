"""What a newcomer finds in the default workspace image, and what they are told when it
is missing (the devcontainer CLI's recorded answer for an image that is not there)."""

import subprocess

from agent.config import DEFAULT_BASE_IMAGE
from agent.workspaces.backends import _up_error
from agent.workspaces.containers import parse_up_output
from tests.agent.workspaces.test_containers import fixture


def test_the_default_image_has_python3_and_node() -> None:
    probe = subprocess.run(
        [
            "docker",
            "run",
            "--rm",
            "--network",
            "none",
            DEFAULT_BASE_IMAGE,
            "sh",
            "-c",
            "python3 --version && node --version && git --version",
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert probe.returncode == 0, probe.stderr
    python, node, git = probe.stdout.split("\n")[:3]
    assert python.startswith("Python 3.") and node.startswith("v") and git.startswith("git ")


def test_a_missing_image_names_the_script_that_builds_it() -> None:
    up = parse_up_output(fixture("up-no-image.stdout"))
    failure = _up_error("devcontainer up", up, fixture("up-no-image.stderr"), timed_out=False)
    assert "scripts/build-image" in failure.hint
