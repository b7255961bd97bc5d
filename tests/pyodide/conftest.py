"""One real-Pyodide Worker per session, loaded from the exact `wrangler deploy --dry-run`
bundle (see docs/pyodide-harness.md)."""

from collections.abc import Iterator
from pathlib import Path

import pytest

from devtools.local_ca import LocalCa
from tests.fakes.anthropic import ScriptedModel
from tests.fakes.github import FakeGitHub
from tests.fakes.openai import OpenAiModels
from tests.pyodide.callers import DEVELOPMENT_VARS
from tests.pyodide.harness import PyodideWorker
from tests.pyodide.loopback_nodes import AGENT_HOST, AgentDouble, NodeLauncherDouble
from tests.support.wrangler import dry_run_bundle
from worker.auth.crypto import generate_key


@pytest.fixture(scope="session")
def bundle(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return dry_run_bundle(tmp_path_factory.mktemp("wrangler"))


@pytest.fixture(scope="session")
def pyodide_worker(bundle: Path) -> Iterator[PyodideWorker]:
    worker = PyodideWorker(bundle, secrets={"SAM_ENCRYPTION_KEY": generate_key()})
    yield worker
    worker.close()


@pytest.fixture(scope="session")
def nodes_ca(tmp_path_factory: pytest.TempPathFactory) -> LocalCa:
    """The CA that certifies the agent double, as `sam dev`'s certifies local nodes."""
    return LocalCa.ensure(tmp_path_factory.mktemp("nodes-ca"))


@pytest.fixture(scope="module")
def agent(nodes_ca: LocalCa, tmp_path_factory: pytest.TempPathFactory) -> Iterator[AgentDouble]:
    files = nodes_ca.issue(AGENT_HOST, tmp_path_factory.mktemp("agent-tls"))
    with AgentDouble((files.cert, files.key)) as double:
        yield double


@pytest.fixture(scope="module")
def node_launcher(agent: AgentDouble) -> Iterator[NodeLauncherDouble]:
    with NodeLauncherDouble(agent.port) as double:
        yield double


@pytest.fixture(scope="module")
def openai() -> Iterator[OpenAiModels]:
    with OpenAiModels() as fake:
        yield fake


@pytest.fixture(scope="module")
def anthropic() -> Iterator[ScriptedModel]:
    with ScriptedModel() as model:
        yield model


@pytest.fixture(scope="module")
def github() -> Iterator[FakeGitHub]:
    with FakeGitHub() as fake:
        yield fake


@pytest.fixture(scope="module")
def development_worker(
    bundle: Path,
    node_launcher: NodeLauncherDouble,
    openai: OpenAiModels,
    anthropic: ScriptedModel,
    github: FakeGitHub,
    nodes_ca: LocalCa,
) -> Iterator[PyodideWorker]:
    """A Worker of its own per module (its first user is the admin), in development mode
    (dev sign-in), with `sam dev`'s LOCAL_NODES binding played by the launcher double and
    the model APIs that check agent keys before they are saved, and the GitHub App, by
    loopback doubles; its agents' CA is trusted, as `sam dev` trusts its own."""
    upstreams = {"SAM_OPENAI_API_URL": openai.url, "SAM_ANTHROPIC_API_URL": anthropic.url}
    worker = PyodideWorker(
        bundle,
        vars={**DEVELOPMENT_VARS, **upstreams, **github.app_public_vars()},
        services={"LOCAL_NODES": node_launcher.url},
        secrets=github.app_secrets(),
        loopback_cas=(nodes_ca.cert_path,),
    )
    yield worker
    worker.close()
