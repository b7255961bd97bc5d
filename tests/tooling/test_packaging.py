"""The distributions agree: the root project (the Worker, with the agent's and the dev
tools' dependencies as extras) and the agent's own (agent/deploy/pyproject.toml).

That the agent's list is enough, and holds nothing of the control plane, is proven by
tests/agent/test_build_agent.py, which installs and runs the artifact built from it.
"""

import tomllib
from pathlib import Path

from wire.version import VERSION

ROOT = Path(__file__).resolve().parents[2]
PROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
AGENT_PROJECT = tomllib.loads((ROOT / "agent" / "deploy" / "pyproject.toml").read_text())


def test_the_root_agent_extra_is_the_agent_distributions_dependencies() -> None:
    assert PROJECT["optional-dependencies"]["agent"] == AGENT_PROJECT["project"]["dependencies"]


def test_one_version_for_every_distribution() -> None:
    assert PROJECT["version"] == VERSION
    # The agent's distribution reads it from wire/version.py when its wheel is built.
    assert AGENT_PROJECT["tool"]["setuptools"]["dynamic"]["version"] == {
        "attr": "wire.version.VERSION"
    }
