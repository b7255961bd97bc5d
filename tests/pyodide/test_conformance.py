"""The binding conformance suite (tests/twin/conformance) on workerd's D1, KV and R2, through
the SDK's wrappers, inside the real-Pyodide harness: one test id per case, as on the twin."""

from pathlib import Path

import pytest

from tests.pyodide.harness import PyodideWorker
from tests.twin import conformance
from tests.twin.conformance import CASES
from tests.twin.conformance.checks import Case

SUITE = Path(conformance.__file__).parent
PORTABLE = [case for case in CASES if case.twin_only is None]


@pytest.fixture(scope="module")
def workerd_results(pyodide_worker: PyodideWorker) -> dict[str, str | None]:
    """{case id: None when it passed on workerd, else its traceback}."""
    return pyodide_worker.call("conformance", suite=str(SUITE))


@pytest.mark.parametrize("case", PORTABLE, ids=[case.id for case in PORTABLE])
def test_conformance(case: Case, workerd_results: dict[str, str | None]) -> None:
    failure = workerd_results[case.id]
    if failure is not None:
        pytest.fail(f"on workerd:\n{failure}", pytrace=False)


def test_the_same_cases_run_on_both_runtimes(workerd_results: dict[str, str | None]) -> None:
    # The twin runs every case (tests/twin/test_conformance.py); workerd every one that is
    # not twin-only, each of which says why.
    assert list(workerd_results) == [case.id for case in PORTABLE]
    assert all(case.twin_only for case in CASES if case not in PORTABLE)
