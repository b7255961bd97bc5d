"""What still keeps the Worker from running under real Pyodide, as strict expected failures.

Each marker names the phase that removes it; a fix makes its tests pass, which fails them
(strict) until the marker is deleted here.
"""

import pytest

from tests.pyodide.harness import MainModuleUnavailable

# worker/auth/scoped_tokens.py (`import jwt`), worker/auth/keys.py (`cryptography`, `jwt.algorithms`)
# and worker/auth/crypto.py (`cryptography`) import packages without a Pyodide wheel, and
# the router, the API, cron and NodeLifecycle all import them.
CRYPTO_IMPORTS = "phase B: the Worker's crypto still imports jwt/cryptography (no Pyodide wheel)"
MAIN_MODULE_DOES_NOT_IMPORT = pytest.mark.xfail(strict=True, reason=CRYPTO_IMPORTS)
UNTIL_THE_CRYPTO_SEAM = pytest.mark.xfail(
    raises=MainModuleUnavailable, strict=True, reason=CRYPTO_IMPORTS
)
