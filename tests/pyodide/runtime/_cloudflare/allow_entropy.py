"""How many getentropy calls the import running now may make (workerd refuses the rest).

The count lives in a one-byte array whose address the Node host reads from Pyodide's
memory on every call, so no Python runs inside the entropy hook.
"""

import traceback
from array import array
from collections.abc import Iterator
from contextlib import contextmanager

ALLOWED_CALLS = array("b", [0])
EIO = 29  # what a refused getentropy reports on Emscripten
# Where Python code asked for entropy and was refused, even if it caught the OSError.
REFUSED: list[str] = []


def allowance_address() -> int:
    return ALLOWED_CALLS.buffer_info()[0]


@contextmanager
def allow_bad_entropy_calls(calls: int) -> Iterator[None]:
    """Let the import inside spend exactly `calls` getentropy calls; fewer is a mistake."""
    before = ALLOWED_CALLS[0]
    ALLOWED_CALLS[0] = calls
    yield
    left = ALLOWED_CALLS[0]
    ALLOWED_CALLS[0] = before
    if left > 0:
        raise RuntimeError(f"{left} unexpected leftover getentropy calls")


def refuse_unless_allowed() -> None:
    """For Python-level entropy (`os.urandom`): spend an allowance or refuse, as workerd does."""
    if ALLOWED_CALLS[0] > 0:
        return  # the C call underneath spends it
    REFUSED.append("".join(traceback.format_stack(limit=8)[:-1]))
    raise OSError(EIO, "Cannot get entropy outside of request context")
