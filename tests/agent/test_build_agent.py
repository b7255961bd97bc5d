"""scripts/build-agent: the VM artifact installs offline into a fresh venv and runs."""

import os
import re
import shutil
import subprocess
import sys
import tarfile
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.support.agent import start_agent
from tests.support.control_plane import ControlPlaneDouble
from wire.version import VERSION

ROOT = Path(__file__).resolve().parents[2]
BUILD_TIMEOUT_SECONDS = 600
INSTALL_TIMEOUT_SECONDS = 300
# What a wheel may be tagged to install on Debian bookworm's CPython 3.11 on x86_64.
VM_WHEEL = re.compile(
    r"-(py3|py2\.py3|cp3\d+)-(none|abi3|cp311)-(any|(manylinux[\w.]*_x86_64(\.manylinux\w*)*))\.whl$"
)


@pytest.fixture(scope="module")
def bundle(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    out = tmp_path_factory.mktemp("dist")
    subprocess.run(
        [str(ROOT / "scripts" / "build-agent"), "--out", str(out)],
        cwd=ROOT,
        check=True,
        timeout=BUILD_TIMEOUT_SECONDS,
    )
    artifact = out / f"sam-agent-{VERSION}.tar.gz"
    assert artifact.is_file()
    with tarfile.open(artifact) as tar:
        tar.extractall(out / "unpacked", filter="data")
    yield out / "unpacked" / f"sam-agent-{VERSION}"


def offline(command: list[str]) -> list[str]:
    """Without any network when this machine allows a network namespace (root)."""
    if os.geteuid() == 0 and shutil.which("unshare"):
        return ["unshare", "--net", *command]
    return command


def test_the_bundle_holds_only_binary_wheels_for_the_vm(bundle: Path) -> None:
    assert (bundle / "VERSION").read_text().strip() == VERSION
    assert (bundle / "sam-agent.service").read_text().count("EnvironmentFile=") == 1
    wheels = sorted(path.name for path in (bundle / "wheels").iterdir())
    assert f"sam-{VERSION}-py3-none-any.whl" in wheels
    for required in ("aiohttp-", "pyjwt-", "cryptography-", "docker-", "psutil-", "pip-"):
        assert any(name.lower().startswith(required) for name in wheels), required
    assert all(VM_WHEEL.search(name) for name in wheels), [
        name for name in wheels if not VM_WHEEL.search(name)
    ]
    subprocess.run(["sha256sum", "--quiet", "-c", "SHA256SUMS"], cwd=bundle, check=True)


def test_it_installs_offline_and_the_agent_runs(bundle: Path, tmp_path: Path) -> None:
    venv = tmp_path / "venv"
    python = getattr(sys, "_base_executable", sys.executable)
    done = subprocess.run(
        offline(["sh", str(bundle / "install.sh"), str(venv)]),
        cwd=tmp_path,
        env={"PATH": os.environ["PATH"], "PYTHON": python, "HOME": str(tmp_path)},
        capture_output=True,
        text=True,
        timeout=INSTALL_TIMEOUT_SECONDS,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert f"sam-agent {VERSION}" in done.stdout
    # The installed copy, not this checkout: run from elsewhere and ask where it lives.
    where = subprocess.run(
        [str(venv / "bin" / "python"), "-c", "import agent.server; print(agent.server.__file__)"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        check=True,
    )
    assert where.stdout.startswith(str(venv)), where.stdout

    with ControlPlaneDouble() as control_plane:
        agent = start_agent(
            control_plane,
            tmp_path / "state",
            backend="host",
            python=str(venv / "bin" / "python"),
            cwd=tmp_path,
        )
        try:
            assert httpx.get(f"{agent.url}/health").json()["agent_version"] == VERSION
            with agent.client() as client:
                assert client.get("/workspaces").json() == {"workspaces": []}
            control_plane.wait_for("heartbeat")
        finally:
            assert agent.stop() == 0


def test_install_refuses_another_python(bundle: Path, tmp_path: Path) -> None:
    fake = tmp_path / "python-3.12"
    fake.write_text("#!/bin/sh\necho 3.12\n")
    fake.chmod(0o755)
    done = subprocess.run(
        ["sh", str(bundle / "install.sh"), str(tmp_path / "venv")],
        env={"PATH": os.environ["PATH"], "PYTHON": str(fake)},
        capture_output=True,
        text=True,
    )
    assert done.returncode != 0
    assert "CPython 3.11" in done.stderr and "3.12" in done.stderr
