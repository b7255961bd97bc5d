"""scripts/build-agent: the VM artifact installs offline into a fresh venv and runs.

It holds the `sam-agent` distribution (agent/ and wire/) and the agent's dependencies,
nothing of the control plane. Installed inside the workspace base image (Debian bookworm's
own python3) with no network, the agent runs there against the real local edge.
"""

import asyncio
import os
import re
import shutil
import subprocess
import sys
import tarfile
import time
import zipfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest

from tests.support.agent import free_port, start_agent
from tests.support.control_plane import ControlPlaneDouble
from tests.support.edge import running_edge
from tests.support.edge_tokens import EdgeSigner
from wire.version import VERSION

ROOT = Path(__file__).resolve().parents[2]
BUILD_TIMEOUT_SECONDS = 600
INSTALL_TIMEOUT_SECONDS = 300
AGENT_START_TIMEOUT_SECONDS = 30
DOCKER_TIMEOUT_SECONDS = 60
BASE_IMAGE = "sam-workspace-base:bookworm"
VM_VENV = "/opt/sam-agent/venv"
NODE_ID = "n-artifact-in-the-image"
# What must not reach a VM: the control plane, the twin, the dev tools and their packages.
CONTROL_PLANE_MODULES = ("worker", "durable_objects", "twin", "devtools", "fastapi", "uvicorn")
CONTROL_PLANE_WHEELS = ("sam-", "fastapi-", "starlette-", "uvicorn-", "croniter-", "rich-")
# Tries each module named on the command line; prints those that import.
IMPORTABLE = """
import importlib, sys
found = []
for name in sys.argv[1:]:
    try:
        importlib.import_module(name)
    except ImportError:
        continue
    found.append(name)
print(" ".join(found))
"""
# What a wheel may be tagged to install on CPython 3.11 (Debian bookworm's) to 3.13 on x86_64.
VM_WHEEL = re.compile(
    r"-(py3|py2\.py3|cp3\d+)-(none|abi3|cp311|cp312|cp313)-"
    r"(any|(manylinux[\w.]*_x86_64(\.manylinux\w*)*))\.whl$"
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
    assert f"sam_agent-{VERSION}-py3-none-any.whl" in wheels
    for required in ("aiohttp-", "pyjwt-", "cryptography-", "docker-", "psutil-", "pip-"):
        assert any(name.lower().startswith(required) for name in wheels), required
    for abi in ("cp311", "cp312", "cp313"):  # what install.sh accepts
        assert any(f"-{abi}-{abi}-" in name for name in wheels), f"no {abi} wheel"
    assert all(VM_WHEEL.search(name) for name in wheels), [
        name for name in wheels if not VM_WHEEL.search(name)
    ]
    subprocess.run(["sha256sum", "--quiet", "-c", "SHA256SUMS"], cwd=bundle, check=True)


def test_the_bundle_holds_no_control_plane(bundle: Path) -> None:
    wheels = [path.name.lower() for path in (bundle / "wheels").iterdir()]
    assert not [name for name in wheels if name.startswith(CONTROL_PLANE_WHEELS)]
    own = bundle / "wheels" / f"sam_agent-{VERSION}-py3-none-any.whl"
    with zipfile.ZipFile(own) as wheel:
        packages = {name.split("/")[0] for name in wheel.namelist()}
    assert packages == {"agent", "wire", f"sam_agent-{VERSION}.dist-info"}


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
    fake = tmp_path / "python-3.10"
    fake.write_text("#!/bin/sh\necho 3.10\n")
    fake.chmod(0o755)
    done = subprocess.run(
        ["sh", str(bundle / "install.sh"), str(tmp_path / "venv")],
        env={"PATH": os.environ["PATH"], "PYTHON": str(fake)},
        capture_output=True,
        text=True,
    )
    assert done.returncode != 0
    assert "CPython 3.11 3.12 3.13 but" in done.stderr and "is 3.10" in done.stderr


# --- in the workspace base image: a Debian bookworm VM's own python3 ----------------------


@contextmanager
def container(name: str) -> Iterator[str]:
    """A container name that is removed afterwards, whatever happened to the container."""
    try:
        yield name
    finally:
        subprocess.run(["docker", "rm", "-f", name], capture_output=True, check=False)
        left = subprocess.run(
            ["docker", "ps", "-aq", "--filter", f"name=^{name}$"],
            capture_output=True,
            text=True,
            check=True,
        )
        assert left.stdout.strip() == "", f"container {name} was left behind"


def in_the_image(
    name: str, opt: Path, *command: str, network: str = "none", timeout: float
) -> subprocess.CompletedProcess[str]:
    """`command` as root in a fresh base-image container with `opt` as /opt/sam-agent."""
    with container(name):
        return subprocess.run(
            [
                *("docker", "run", "--rm", "--name", name, "--network", network, "--user", "root"),
                *("-v", f"{opt}:/opt/sam-agent", "-w", "/", BASE_IMAGE, *command),
            ],
            capture_output=True,
            text=True,
            timeout=timeout,
        )


@pytest.fixture(scope="module")
def vm_opt(bundle: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """/opt/sam-agent after install.sh ran in the base image with no network."""
    opt = tmp_path_factory.mktemp("vm-opt")
    shutil.copytree(bundle, opt / bundle.name)
    done = in_the_image(
        f"sam-test-install-{os.getpid()}",
        opt,
        *("sh", f"/opt/sam-agent/{bundle.name}/install.sh", VM_VENV),
        timeout=INSTALL_TIMEOUT_SECONDS,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert f"sam-agent {VERSION}" in done.stdout
    return opt


def test_in_the_image_the_venv_holds_the_agent_and_no_control_plane(vm_opt: Path) -> None:
    done = in_the_image(
        f"sam-test-imports-{os.getpid()}",
        vm_opt,
        *(f"{VM_VENV}/bin/python", "-c", IMPORTABLE, "agent.server", "wire.terminal"),
        *CONTROL_PLANE_MODULES,
        timeout=DOCKER_TIMEOUT_SECONDS,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["agent.server", "wire.terminal"]


def test_in_the_image_the_agent_runs_against_the_real_edge(vm_opt: Path, tmp_path: Path) -> None:
    state = tmp_path / "state"
    state.mkdir()
    # Not a node token: this edge knows no such node, so its heartbeats are refused.
    (state / "callback-token").write_text("no-node-token")
    port = free_port()
    with running_edge(tmp_path / ".sam") as edge:
        signer = EdgeSigner(edge.data_dir, edge.domain)
        try:
            token = asyncio.run(signer.agent(NODE_ID))
        finally:
            signer.close()
        settings = {
            "SAM_NODE_ID": NODE_ID,
            "SAM_CONTROL_PLANE_URL": f"http://{edge.host('api')}",
            "SAM_AGENT_HOST": "127.0.0.1",
            "SAM_AGENT_PORT": str(port),
            "SAM_BACKEND": "host",
            "SAM_STATE_DIR": "/var/lib/sam-agent",
            "SAM_CALLBACK_TOKEN_FILE": "/var/lib/sam-agent/callback-token",
        }
        with container(f"sam-test-agent-{port}") as name:
            subprocess.run(
                [
                    *("docker", "run", "-d", "--name", name, "--network", "host", "--user", "root"),
                    *("-v", f"{vm_opt}:/opt/sam-agent:ro", "-v", f"{state}:/var/lib/sam-agent"),
                    *(f"--env={key}={value}" for key, value in settings.items()),
                    *(BASE_IMAGE, f"{VM_VENV}/bin/python", "-m", "agent"),
                ],
                capture_output=True,
                check=True,
                timeout=DOCKER_TIMEOUT_SECONDS,
            )
            health = wait_for_health(name, f"http://127.0.0.1:{port}/health")
            assert health == {"status": "ok", "node_id": NODE_ID, "agent_version": VERSION}

            # The agent checks the edge's token against the edge's own JWKS, fetched from
            # the edge by name (api.localhost) from inside the container.
            with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=10.0) as client:
                assert client.get("/workspaces").status_code == 401
                listed = client.get("/workspaces", headers={"authorization": f"Bearer {token}"})
                assert listed.status_code == 200, logs(name)
                assert listed.json() == {"workspaces": []}


def wait_for_health(name: str, url: str) -> object:
    deadline = time.monotonic() + AGENT_START_TIMEOUT_SECONDS
    while time.monotonic() < deadline:
        try:
            return httpx.get(url, timeout=2.0).json()
        except httpx.TransportError:
            time.sleep(0.1)
    raise TimeoutError(f"the agent in {name} did not answer {url}:\n{logs(name)}")


def logs(name: str) -> str:
    done = subprocess.run(["docker", "logs", name], capture_output=True, text=True)
    return done.stdout + done.stderr
