"""A Durable Object's RPC answer, with its refusals raised as domain errors.

An object answers a refusal as `{"error": code, "message": text}` (an exception would cross
RPC as bare text). Its client names the codes it knows and their kinds once:

    _checked = refusals_raised("TaskRunner", {"run_not_found": NotFound, ...})
    run = _checked(await stub.status(run_id))   # the answer, or NotFound("run_not_found", …)
"""

from collections.abc import Callable, Mapping
from typing import Any

from worker.errors import SamError

REFUSAL_KEYS = frozenset({"error", "message"})


def refusals_raised(callee: str, kinds: Mapping[str, type[SamError]]) -> Callable[[Any], Any]:
    """A check that returns `callee`'s answer, or raises its refusal as the kind its code names.

    Exactly the two keys make a refusal: a record may carry an `error` field of its own (a
    Run's reason for failing). A code missing from `kinds` is our own mistake.
    """

    def checked(answer: Any) -> Any:
        if isinstance(answer, dict) and answer.keys() == REFUSAL_KEYS:
            kind = kinds.get(answer["error"])
            assert kind is not None, f"{callee} answered an unknown refusal {answer['error']!r}"
            raise kind(answer["error"], answer["message"])
        return answer

    return checked
