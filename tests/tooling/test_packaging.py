"""Each deployable's dependency list installs what its code imports, the lists agree, and
one lock pins them all.

The root project is the Worker (its dependencies are exactly what scripts/vendor-worker
vendors for Cloudflare, at the lock's versions), with the agent's and the dev tools' lists
as extras; the agent is also a distribution of
its own (agent/deploy/pyproject.toml). That the agent's list holds nothing of the control
plane is proven by tests/agent/test_build_agent.py, which installs and runs its artifact.
"""

import importlib.metadata
import re
import tomllib

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from tests.tooling.imports import ROOT, import_graph, third_party_imports
from wire.version import VERSION

PROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
AGENT_PROJECT = tomllib.loads((ROOT / "agent" / "deploy" / "pyproject.toml").read_text())
LOCK = {
    canonicalize_name(name): version
    for name, version in re.findall(
        r"^([A-Za-z0-9._-]+)==(\S+)$", (ROOT / "requirements.lock").read_text(), re.MULTILINE
    )
}
# Cloudflare's runtime gives the Worker these; locally the twin stands in for them.
RUNTIME_PROVIDED = {"js", "pyodide"}
# Import name → distribution of what the Worker's list declares for Pyodide only (its
# marker keeps it out of this venv and the lock; the twin stands in for it here).
PYODIDE_ONLY = {"workers": ["workers-runtime-sdk"]}
VENDORED = ROOT / "python_modules"


def extra(name: str) -> list[Requirement]:
    """The root project's extra `name`, with its references to other extras expanded."""
    requirements = []
    for requirement in map(Requirement, PROJECT["optional-dependencies"][name]):
        if requirement.name == PROJECT["name"]:
            requirements += [r for own in sorted(requirement.extras) for r in extra(own)]
        else:
            requirements.append(requirement)
    return requirements


WORKER = [Requirement(r) for r in PROJECT["dependencies"]]
AGENT = [Requirement(r) for r in AGENT_PROJECT["project"]["dependencies"]]
DEPLOYABLES = {
    "the Worker": (["worker", "durable_objects", "wire"], WORKER),
    "the agent": (["agent", "wire"], AGENT),
    "the dev tools and the twin": (["devtools", "twin"], WORKER + extra("local")),
}


@pytest.mark.parametrize("deployable", DEPLOYABLES)
def test_its_list_names_every_third_party_package_its_code_imports(deployable: str) -> None:
    packages, requirements = DEPLOYABLES[deployable]
    declared = {canonicalize_name(requirement.name) for requirement in requirements}
    installed_by = {**importlib.metadata.packages_distributions(), **PYODIDE_ONLY}
    undeclared = {
        name: installed_by.get(name)
        for name in third_party_imports(import_graph(third_party=True), packages) - RUNTIME_PROVIDED
        if not declared & {canonicalize_name(d) for d in installed_by.get(name, [])}
    }
    assert not undeclared, f"{deployable} imports these without declaring them: {undeclared}"


def test_the_root_agent_extra_is_the_agent_distributions_dependencies() -> None:
    assert PROJECT["optional-dependencies"]["agent"] == AGENT_PROJECT["project"]["dependencies"]


def test_the_lock_pins_every_declared_requirement_within_its_range() -> None:
    every_extra = [r for name in PROJECT["optional-dependencies"] for r in extra(name)]
    outside = [
        str(requirement)
        for requirement in filter(_installed_here, WORKER + AGENT + every_extra)
        if (pin := LOCK.get(canonicalize_name(requirement.name))) is None
        or not requirement.specifier.contains(pin, prereleases=True)
    ]
    assert not outside, f"requirements.lock is stale for {outside}: run .venv/bin/pip-compile"


def _installed_here(requirement: Requirement) -> bool:
    return requirement.marker is None or requirement.marker.evaluate()


def _pinned_version(requirement: Requirement) -> str:
    """The version the lock pins, or (for what the lock cannot hold) the list's own pin."""
    if _installed_here(requirement):
        return LOCK[canonicalize_name(requirement.name)]
    [pin] = requirement.specifier
    assert pin.operator == "==", f"{requirement} is kept out of the lock, so it pins exactly"
    return pin.version


def test_what_the_lock_cannot_hold_is_pinned_exactly_in_the_list() -> None:
    assert {r.name: _pinned_version(r) for r in WORKER if not _installed_here(r)}


def test_the_vendored_packages_are_the_workers_list_at_the_locked_versions() -> None:
    if not VENDORED.is_dir():
        pytest.fail(f"{VENDORED.name}/ is missing: run scripts/vendor-worker (scripts/setup does)")
    vendored = {
        canonicalize_name(name): version
        for name, version in (
            path.name.removesuffix(".dist-info").rsplit("-", 1)
            for path in VENDORED.glob("*.dist-info")
        )
    }
    wanted = {canonicalize_name(r.name): _pinned_version(r) for r in WORKER}
    assert {name: vendored.get(name) for name in wanted} == wanted
    # What those bring with them is vendored at the lock's versions too.
    assert {name: version for name, version in vendored.items() if name not in wanted} == {
        name: LOCK.get(name) for name in vendored if name not in wanted
    }


def test_one_version_for_every_distribution() -> None:
    assert PROJECT["version"] == VERSION
    # The agent's distribution reads it from wire/version.py when its wheel is built.
    assert AGENT_PROJECT["tool"]["setuptools"]["dynamic"]["version"] == {
        "attr": "wire.version.VERSION"
    }
