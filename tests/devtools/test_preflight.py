"""What `sam dev` checks first (devtools/preflight.py), with the real Docker Engine: a
missing engine and a missing base image each name the script that fixes it, and
`sam dev` prints the warning and still starts."""

from pathlib import Path

from devtools import preflight
from tests.support.edge import running_edge
from tests.worker.workspaces.test_workspaces_api import BASE_IMAGE


def test_a_machine_with_the_engine_and_the_image_has_no_problem() -> None:
    assert preflight.problems(image=BASE_IMAGE) == []


def test_a_missing_image_names_scripts_build_image() -> None:
    [problem] = preflight.problems(image="sam-preflight-test:no-such-tag")
    assert "sam-preflight-test:no-such-tag is missing" in problem
    assert "scripts/build-image" in problem


def test_no_docker_names_scripts_docker_engine(tmp_path: Path) -> None:
    [problem] = preflight.problems(docker=str(tmp_path / "no-docker-here"))
    assert "No Docker Engine answers" in problem
    assert "scripts/docker-engine" in problem


def test_sam_dev_warns_and_still_starts(tmp_path: Path) -> None:
    no_docker = tmp_path / "bin"
    no_docker.mkdir()
    with running_edge(tmp_path / ".sam", extra_env={"PATH": str(no_docker)}) as edge:
        log = edge.log()
    assert "No Docker Engine answers" in log and "scripts/docker-engine" in log, log
