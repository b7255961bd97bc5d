"""The node agent's artifact (scripts/build-agent), built once and cached between runs.

Building takes about 10 s here (pip downloads the VM's wheels: from PyPI, or the machine's
wheel cache). The cache lives in the system's temp dir, keyed by the version and a digest
of everything that goes into the artifact, so an edit to the agent rebuilds it and an
unchanged tree reuses it across test sessions.
"""

import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from wire.version import VERSION

ROOT = Path(__file__).resolve().parents[2]
BUILD_TIMEOUT_SECONDS = 600
CACHE_DIR = Path(tempfile.gettempdir()) / "sam-agent-artifacts"
# What the artifact is made of: the sam-agent distribution (agent/ and wire/, its project
# file and the unit in agent/deploy/), the build script and the lock it downloads by.
INPUTS = ("agent", "wire", "scripts/build-agent", "requirements.lock")


def _digest() -> str:
    digest = hashlib.sha256()
    for name in INPUTS:
        path = ROOT / name
        files = sorted(path.rglob("*")) if path.is_dir() else [path]
        for file in files:
            if file.is_file() and "__pycache__" not in file.parts and file.suffix != ".pyc":
                digest.update(str(file.relative_to(ROOT)).encode() + b"\0")
                digest.update(file.read_bytes())
    return digest.hexdigest()[:16]


def agent_artifact() -> Path:
    """`sam-agent-<version>.tar.gz` for this tree, building it only when the tree changed."""
    target = CACHE_DIR / f"{VERSION}-{_digest()}" / f"sam-agent-{VERSION}.tar.gz"
    if target.is_file():
        return target
    target.parent.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix="build-", dir=target.parent.parent))
    try:
        built = subprocess.run(
            [str(ROOT / "scripts" / "build-agent"), "--out", str(staging)],
            cwd=ROOT,
            timeout=BUILD_TIMEOUT_SECONDS,
            capture_output=True,
            text=True,
        )
        if built.returncode != 0:
            raise RuntimeError(f"scripts/build-agent failed:\n{built.stdout}\n{built.stderr}")
        target.parent.mkdir(exist_ok=True)
        os.replace(staging / target.name, target)  # atomic: a reader never sees half of it
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return target


def upload_agent(data_dir: Path, artifact: Path) -> subprocess.CompletedProcess[str]:
    """`sam upload-agent`, as a deployment does once: the artifact into the edge's R2."""
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "devtools.cli",
            "upload-agent",
            "--data-dir",
            str(data_dir),
            "--config",
            str(ROOT / "wrangler.toml"),
            str(artifact),
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
