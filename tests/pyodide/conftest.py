"""One real-Pyodide Worker per session, loaded from the exact `wrangler deploy --dry-run`
bundle (see docs/pyodide-harness.md)."""

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.pyodide.harness import PyodideWorker
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
