"""The binding conformance suite (tests/twin/conformance) on the twin's D1, KV and R2."""

import pytest

from tests.twin.conformance import CASES
from tests.twin.conformance.checks import Case, Runtime
from twin.clock import ManualClock
from twin.errors import D1Error, KVError, R2Error

FIXTURES = {"d1": "db", "kv": "kv", "r2": "bucket"}
ERRORS = {"d1": D1Error, "kv": KVError, "r2": R2Error}


@pytest.mark.parametrize("case", CASES, ids=[case.id for case in CASES])
async def test_conformance(case: Case, clock: ManualClock, request: pytest.FixtureRequest) -> None:
    binding = request.getfixturevalue(FIXTURES[case.binding])
    runtime = Runtime("twin", ERRORS[case.binding], now=clock.now, advance=clock.advance)
    await case.run(binding, runtime)
