"""What `sam dev` checks before it starts: what local workspaces need on this machine.

    problems(docker="docker", image=DEFAULT_BASE_IMAGE) -> [sentence, ...]

Each sentence says what is missing, what happens without it, and the script that fixes
it. None stops `sam dev` (the web app, the API and cloud nodes work without them); they
are printed where the user looks, before the URLs.
"""

import shutil
import subprocess

from agent.config import DEFAULT_BASE_IMAGE

PROBE_TIMEOUT_SECONDS = 10.0


def problems(docker: str = "docker", image: str = DEFAULT_BASE_IMAGE) -> list[str]:
    if not _answers(docker, "info", "--format", "{{.ServerVersion}}"):
        return [
            "No Docker Engine answers (`docker info`), so local workspaces would run "
            "unisolated on this machine, for one user only. Start one with "
            "scripts/docker-engine, then restart scripts/dev."
        ]
    if not _answers(docker, "image", "inspect", image):
        return [
            f"The workspace base image {image} is missing, so local workspaces without "
            "an image of their own would fail. Build it with scripts/build-image (offline, "
            "about a minute)."
        ]
    return []


def _answers(docker: str, *argv: str) -> bool:
    if shutil.which(docker) is None:
        return False
    try:
        done = subprocess.run(
            [docker, *argv], capture_output=True, timeout=PROBE_TIMEOUT_SECONDS, check=False
        )
    except (OSError, subprocess.TimeoutExpired):
        return False
    return done.returncode == 0
