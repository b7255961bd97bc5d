"""Each deployable's dependency list installs what its code imports, and the lists agree.

The root project is the Worker (its dependencies are what is vendored for Cloudflare),
with the agent's and the dev tools' lists as extras; the agent is also a distribution of
its own (agent/deploy/pyproject.toml). That the agent's list holds nothing of the control
plane is proven by tests/agent/test_build_agent.py, which installs and runs its artifact.
"""

import importlib.metadata
import re
import tomllib

import pytest

from tests.tooling.imports import ROOT, import_graph, third_party_imports
from wire.version import VERSION

PROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
AGENT_PROJECT = tomllib.loads((ROOT / "agent" / "deploy" / "pyproject.toml").read_text())
# Cloudflare's runtime gives the Worker these; locally the twin stands in for them.
RUNTIME_PROVIDED = {"js", "workers"}
SELF_EXTRA = re.compile(rf"{PROJECT['name']}\[(?P<extras>[\w,]+)\]$")
NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")


def extra(name: str) -> list[str]:
    """The root project's extra `name`, with its references to other extras expanded."""
    requirements = []
    for requirement in PROJECT["optional-dependencies"][name]:
        if own := SELF_EXTRA.match(requirement):
            requirements += [r for e in own["extras"].split(",") for r in extra(e)]
        else:
            requirements.append(requirement)
    return requirements


def distribution(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


DEPLOYABLES = {
    "the Worker": (["worker", "durable_objects", "wire"], PROJECT["dependencies"]),
    "the agent": (["agent", "wire"], AGENT_PROJECT["project"]["dependencies"]),
    "the dev tools and the twin": (["devtools", "twin"], PROJECT["dependencies"] + extra("local")),
}


@pytest.mark.parametrize("deployable", DEPLOYABLES)
def test_its_list_names_every_third_party_package_its_code_imports(deployable: str) -> None:
    packages, requirements = DEPLOYABLES[deployable]
    declared = {distribution(NAME.match(requirement)[0]) for requirement in requirements}
    installed_by = importlib.metadata.packages_distributions()
    undeclared = {
        name: installed_by.get(name)
        for name in third_party_imports(import_graph(third_party=True), packages) - RUNTIME_PROVIDED
        if not declared & {distribution(d) for d in installed_by.get(name, [])}
    }
    assert not undeclared, f"{deployable} imports these without declaring them: {undeclared}"


def test_the_root_agent_extra_is_the_agent_distributions_dependencies() -> None:
    assert PROJECT["optional-dependencies"]["agent"] == AGENT_PROJECT["project"]["dependencies"]


def test_one_version_for_every_distribution() -> None:
    assert PROJECT["version"] == VERSION
    # The agent's distribution reads it from wire/version.py when its wheel is built.
    assert AGENT_PROJECT["tool"]["setuptools"]["dynamic"]["version"] == {
        "attr": "wire.version.VERSION"
    }
