"""Runs the binding conformance suite inside the harness, on workerd's D1, KV and R2.

The suite (tests/twin/conformance, mounted as the package `conformance`) is the one the
twin runs. Each case gets its own binding, reached the way a Worker reaches its bindings:
through `self.env` of a `WorkerEntrypoint`, which the SDK wraps by workerd's class names.
"""

import asyncio
import json
import sys
import time
import traceback
from typing import Any

from pyodide.ffi import JsException
from workers import WorkerEntrypoint

CASE_TIMEOUT_SECONDS = 30  # a hung call must fail its case, not the whole host


class _Bindings(WorkerEntrypoint):
    """Nothing but the SDK's construction: `self.env` wraps the bindings as the Worker's."""


def _portable_cases() -> list[Any]:
    from conformance import CASES

    return [case for case in CASES if case.twin_only is None]


def _binding_name(index: int) -> str:
    return f"CASE_{index}"


def plan(suite_parent: str) -> str:
    """The bindings to create, as JSON: [[binding name, "d1" | "kv" | "r2"], ...]."""
    if suite_parent not in sys.path:
        sys.path.insert(0, suite_parent)
    cases = _portable_cases()
    return json.dumps([[_binding_name(index), case.binding] for index, case in enumerate(cases)])


async def run(env: Any) -> str:
    """Every case on its binding, as JSON: {case id: null, or the failure's traceback}."""
    from conformance.checks import Runtime

    runtime = Runtime("workerd", JsException, now=time.time)
    bindings = _Bindings(None, env).env
    results: dict[str, str | None] = {}
    for index, case in enumerate(_portable_cases()):
        binding = getattr(bindings, _binding_name(index))
        try:
            await asyncio.wait_for(case.run(binding, runtime), CASE_TIMEOUT_SECONDS)
            results[case.id] = None
        except Exception as error:  # every failure is reported against its case
            results[case.id] = "".join(traceback.format_exception(error))
    return json.dumps(results)
