"""The suite's plumbing: cases registered per binding, and what a case may ask of the runtime.

Stdlib only, and imports inside this package are relative: the same modules run on CPython
against the twin (`tests.twin.conformance`) and under Pyodide, inside the real-runtime
harness, as the top-level package `conformance` against workerd's bindings.
"""

import re
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

CaseFunction = Callable[..., Awaitable[None]]


@dataclass(frozen=True)
class Runtime:
    """The runtime a case runs on, as far as a case needs to know it."""

    name: str  # "twin" or "workerd"
    error: type[Exception]  # what a binding raises there: a TwinError, or a JsException
    now: Callable[[], float]  # the binding's clock, in epoch seconds
    # Moves that clock; None on workerd, which runs on real time.
    advance: Callable[[float], None] | None = None


@dataclass(frozen=True)
class Case:
    id: str  # "d1.first_is_none_when_no_row_matches", "kv.bad_keys_are_rejected[empty]"
    binding: str  # the kind of binding the case is handed: "d1", "kv" or "r2"
    function: CaseFunction
    params: tuple[Any, ...] = ()
    twin_only: str | None = None  # why the case cannot run on workerd

    async def run(self, binding: Any, runtime: Runtime) -> None:
        await self.function(binding, runtime, *self.params)


class Suite:
    """The cases of one binding, in the order they are declared."""

    def __init__(self, binding: str) -> None:
        self.binding = binding
        self.cases: list[Case] = []

    def case(
        self,
        *,
        params: dict[str, tuple[Any, ...]] | None = None,
        twin_only: str | None = None,
    ) -> Callable[[CaseFunction], CaseFunction]:
        """Register `async def name(binding, runtime, *params)`, once per entry of `params`."""

        def register(function: CaseFunction) -> CaseFunction:
            name = f"{self.binding}.{function.__name__}"
            for label, args in (params or {"": ()}).items():
                case_id = f"{name}[{label}]" if label else name
                self.cases.append(Case(case_id, self.binding, function, args, twin_only))
            return function

        return register


@dataclass
class Caught:
    error: BaseException | None = None
    message: str = ""


def message_of(error: BaseException) -> str:
    """The error's own text: a JsException's `message`, without the JS error name before it."""
    message = getattr(error, "message", None)
    return message if isinstance(message, str) else str(error)


@contextmanager
def raises(
    kind: type[BaseException], message: str | None = None, *, match: str | None = None
) -> Iterator[Caught]:
    """Like pytest.raises, which Pyodide has not: `message` is exact, `match` a re.search."""
    caught = Caught()
    try:
        yield caught
    except kind as error:
        caught.error, caught.message = error, message_of(error)
    else:
        raise AssertionError(f"no {kind.__name__} raised (expected {message or match!r})")
    if message is not None:
        assert caught.message == message, f"{caught.message!r} != {message!r}"
    if match is not None:
        assert re.search(match, caught.message), f"{caught.message!r} does not match {match!r}"
