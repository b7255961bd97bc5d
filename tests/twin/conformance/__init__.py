"""One binding conformance suite for both runtimes: the CPython twin and workerd.

The cases assert what D1, KV and R2 document and what `workers-runtime-sdk` 1.9.x shows
to Python. `tests/twin/test_conformance.py` runs them on the twin's bindings;
`tests/pyodide/test_conformance.py` runs them inside the real-Pyodide harness on workerd's
bindings (miniflare) as the SDK wraps them. Where the two disagree, the twin is wrong.
"""

from . import d1, kv, r2
from .checks import Case

CASES: list[Case] = [*d1.suite.cases, *kv.suite.cases, *r2.suite.cases]
