"""The Worker's main module under real Pyodide: it imports, spending no entropy at top level
beyond what workerd's patches allow (see docs/pyodide-harness.md)."""

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.pyodide.harness import MAINS, PyodideWorker


@pytest.fixture(scope="module")
def vendored_only(bundle: Path) -> Iterator[PyodideWorker]:
    worker = PyodideWorker(bundle, main="vendored_packages", extra_paths=(MAINS,))
    yield worker
    worker.close()


@pytest.fixture(scope="module")
def canary(bundle: Path) -> Iterator[PyodideWorker]:
    worker = PyodideWorker(bundle, main="entropy_canary", extra_paths=(MAINS,))
    yield worker
    worker.close()


def test_the_main_module_imports(pyodide_worker: PyodideWorker) -> None:
    report = pyodide_worker.report
    assert report.imported, f"{report.main} did not import: {report.failure}"


def test_importing_the_main_module_spends_no_refused_entropy(
    pyodide_worker: PyodideWorker,
) -> None:
    assert pyodide_worker.report.refused == []


def test_the_vendored_packages_import_within_the_runtime_patches(
    vendored_only: PyodideWorker,
) -> None:
    # pydantic_core, opentelemetry and fastapi.telemetry each need entropy at import; the
    # vendored SDK's .pth-loaded patches are what allow it, so this also proves they load.
    report = vendored_only.report
    assert report.imported, report.error
    assert report.refused == []


def test_a_top_level_urandom_fails_the_import_check(canary: PyodideWorker) -> None:
    report = canary.report
    assert not report.imported
    assert report.failure == "OSError: [Errno 29] Cannot get entropy outside of request context"
    assert len(report.refused) == 1
    assert "entropy_canary.py" in report.refused[0]
