"""The devcontainer policy on configurations as the CLI reads them: what passes, what is
refused and how the refusal reads. The same cases run end to end, through the real CLI and
Docker, in test_refusals.py."""

from pathlib import Path
from typing import Any

import pytest

from agent.errors import ContainerError
from agent.workspaces import policy
from agent.workspaces.containers import NetworkInfo
from agent.workspaces.sandbox import Sandbox

SAM_ARGS = ["--network", "sam-ws-x", "--cap-drop", "NET_RAW", "--cap-drop", "MKNOD"]


@pytest.fixture
def checkout(tmp_path: Path) -> Path:
    root = tmp_path / "repo"
    (root / ".devcontainer").mkdir(parents=True)
    return root


def sanitized(config: dict[str, Any], checkout: Path, trusted: bool = False) -> dict[str, Any]:
    return policy.sanitize(
        config, checkout / ".devcontainer" / "devcontainer.json", checkout, trusted=trusted
    )


def refusal(config: dict[str, Any], checkout: Path) -> str:
    with pytest.raises(ContainerError) as refused:
        sanitized(config, checkout)
    assert refused.value.step == "devcontainer policy"
    assert "trusted_devcontainer" in refused.value.hint
    return refused.value.message


SAFE = {
    "name": "dev",
    "image": "debian",
    "remoteUser": "sam",
    "containerEnv": {"A": "1"},
    "postCreateCommand": "make",
    "forwardPorts": [3000],
    "customizations": {"vscode": {"extensions": ["x"]}},
    "mounts": ["type=tmpfs,target=/scratch", {"type": "tmpfs", "target": "/t2"}],
    "runArgs": ["--init", "--shm-size=1g", "--memory", "2g", "-e", "X=1", "--hostname=dev"],
    "configFilePath": {"fsPath": "/x"},  # what read-configuration adds, never passed on
}


def test_the_safe_properties_pass_unchanged(checkout: Path) -> None:
    expected = {k: v for k, v in SAFE.items() if k != "configFilePath"}
    assert sanitized(SAFE, checkout) == expected


@pytest.mark.parametrize(
    ("config", "named"),
    [
        ({"initializeCommand": "touch /tmp/pwned"}, "initializeCommand"),
        ({"dockerComposeFile": "compose.yml", "service": "app"}, "dockerComposeFile"),
        ({"workspaceMount": "source=/,target=/w,type=bind"}, "workspaceMount"),
        ({"privileged": True}, "privileged"),
        ({"capAdd": ["SYS_ADMIN"]}, "capAdd"),
        ({"securityOpt": ["seccomp=unconfined"]}, "securityOpt"),
        ({"features": {"ghcr.io/x/y:1": {}}}, "features"),
        ({"appPort": [80]}, "appPort"),
        ({"somethingNew": 1}, "somethingNew"),
        ({"mounts": ["source=/etc,target=/host-etc,type=bind"]}, "mounts"),
        ({"mounts": [{"source": "/", "target": "/h", "type": "bind"}]}, "mounts"),
        ({"mounts": ["source=v,target=/v,volume-opt=device=/,volume-opt=o=bind"]}, "volume"),
        ({"runArgs": ["--network", "host"]}, "runArgs --network host"),
        ({"runArgs": ["--network=host"]}, "runArgs --network=host"),
        ({"runArgs": ["--net", "container:other"]}, "runArgs --net container:other"),
        ({"runArgs": ["--pid", "host"]}, "runArgs --pid host"),
        ({"runArgs": ["--ipc=host"]}, "runArgs --ipc=host"),
        ({"runArgs": ["--uts", "host"]}, "runArgs --uts host"),
        ({"runArgs": ["--userns=host"]}, "runArgs --userns=host"),
        ({"runArgs": ["--privileged"]}, "runArgs --privileged"),
        ({"runArgs": ["--cap-add", "NET_ADMIN"]}, "runArgs --cap-add NET_ADMIN"),
        ({"runArgs": ["-v", "/:/host"]}, "runArgs -v /:/host"),
        ({"runArgs": ["--device", "/dev/kmsg"]}, "runArgs --device /dev/kmsg"),
        ({"runArgs": ["--label", "sam.workspace=other"]}, "runArgs --label"),
        ({"runArgs": ["--init", "--memory"]}, "runArgs --memory"),
        ({"runArgs": "--privileged"}, "runArgs"),
        ({"build": {"dockerfile": "Dockerfile", "options": ["--network=host"]}}, "build.options"),
        ({"build": {"dockerfile": "../../../etc/Dockerfile"}}, "build.dockerfile"),
        ({"build": {"dockerfile": "Dockerfile", "context": "/"}}, "build.context"),
    ],
)
def test_each_unsafe_property_is_refused_by_name(
    checkout: Path, config: dict[str, Any], named: str
) -> None:
    message = refusal({"image": "debian", **config}, checkout)
    assert named in message and "SAM refuses by default" in message


def test_a_trusted_configuration_passes_whole(checkout: Path) -> None:
    config = {
        "initializeCommand": "touch /tmp/x",
        "privileged": True,
        "runArgs": ["--network", "host"],
        "dockerComposeFile": "compose.yml",
    }
    passed = sanitized(config, checkout, trusted=True)
    assert passed["initializeCommand"] == "touch /tmp/x" and passed["privileged"] is True
    # Paths the CLI would read relative to the original file stay right from elsewhere.
    assert passed["dockerComposeFile"] == [str(checkout.resolve() / ".devcontainer/compose.yml")]


def test_build_paths_are_anchored_to_the_original_file(checkout: Path) -> None:
    passed = sanitized({"build": {"dockerfile": "Dockerfile", "context": ".."}}, checkout)
    assert passed["build"] == {
        "dockerfile": str(checkout.resolve() / ".devcontainer" / "Dockerfile"),
        "context": str(checkout.resolve()),
    }
    default_context = sanitized({"build": {"dockerfile": "Dockerfile"}}, checkout)["build"]
    assert default_context["context"] == str(checkout.resolve() / ".devcontainer")


def test_sam_adds_its_network_and_drops_after_the_repositorys_run_args() -> None:
    network = NetworkInfo("id", "sam-ws-x", "samwx", "172.18.0.0/16", "172.18.0.1", {})
    assert Sandbox(network, None).run_args() == SAM_ARGS
    assert policy.sam_run_args({"runArgs": ["--init"]}, SAM_ARGS) == ["--init", *SAM_ARGS]
    assert policy.sam_run_args({}, SAM_ARGS) == SAM_ARGS
    # A trusted configuration that chose its network and added NET_RAW keeps them.
    trusted = {"runArgs": ["--network", "host"], "capAdd": ["NET_RAW"]}
    assert policy.sam_run_args(trusted, SAM_ARGS) == [
        "--network",
        "host",
        "--cap-drop",
        "MKNOD",
    ]


def test_a_config_file_linked_out_of_the_checkout_is_refused(
    checkout: Path, tmp_path: Path
) -> None:
    host_file = tmp_path / "host-secret.json"
    host_file.write_text('{"image": "debian"}')
    (checkout / ".devcontainer.json").symlink_to(host_file)
    (checkout / ".devcontainer").rmdir()
    with pytest.raises(ContainerError) as refused:
        policy.config_file(checkout)
    assert ".devcontainer.json" in refused.value.message
    assert "outside the repository" in refused.value.message
    assert policy.config_file(checkout, trusted=True) == checkout / ".devcontainer.json"


def test_a_linked_config_folder_is_refused_and_a_link_inside_is_fine(
    checkout: Path, tmp_path: Path
) -> None:
    (checkout / ".devcontainer").rmdir()
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (elsewhere / "devcontainer.json").write_text("{}")
    (checkout / ".devcontainer").symlink_to(elsewhere)
    with pytest.raises(ContainerError):
        policy.config_file(checkout)
    (checkout / ".devcontainer").unlink()
    (checkout / "configs").mkdir()
    (checkout / "configs" / "dev.json").write_text("{}")
    (checkout / ".devcontainer.json").symlink_to(checkout / "configs" / "dev.json")
    assert policy.config_file(checkout) == checkout / ".devcontainer.json"
    assert policy.config_file(tmp_path / "no-repo-here") is None
