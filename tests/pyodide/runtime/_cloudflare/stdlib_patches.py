"""The top-level entropy workerd's own patches grant the standard library, and no more.

Read from workerd's `src/pyodide/internal/topLevelEntropy/entropy_import_context.py`:
`random` seeds itself with 10 getentropy calls and is then blocked (but `Random` and
`SystemRandom`) until the first request reseeds it; `Random.seed(None)` is refused;
`multiprocessing.process` makes one call. Packages' allowances come from the vendored
workers-runtime-sdk (`_workers_sdk_entropy_import_context`), loaded as on Cloudflare.
"""

import os
from collections.abc import Iterator
from contextlib import contextmanager
from types import ModuleType
from typing import Any

from _cloudflare.allow_entropy import allow_bad_entropy_calls, refuse_unless_allowed
from _cloudflare.import_patch_manager import (
    BEFORE_FIRST_REQUEST,
    block_calls,
    register_before_first_request,
    register_exec_patch,
)


@register_exec_patch("random")
@contextmanager
def _random(module: ModuleType) -> Iterator[None]:
    with allow_bad_entropy_calls(10):
        yield
    block_calls(module, allowlist=("Random", "SystemRandom"))


@register_before_first_request("random")
def _reseed_random(module: ModuleType) -> None:
    module.seed()


@register_exec_patch("_random")
@contextmanager
def _random_seed(module: ModuleType) -> Iterator[None]:
    yield
    seed = module.Random.seed

    def seed_refusing_entropy(self: Any, value: Any = None) -> Any:
        if value is None:
            refuse_unless_allowed()
        return seed(self, value)

    module.Random.seed = seed_refusing_entropy
    BEFORE_FIRST_REQUEST.append(lambda: setattr(module.Random, "seed", seed))


@register_exec_patch("multiprocessing.process")
@contextmanager
def _multiprocessing_process(module: ModuleType) -> Iterator[None]:
    with allow_bad_entropy_calls(1):
        yield


_urandom = os.urandom


def urandom_refusing_entropy(size: int) -> bytes:
    """`os.urandom` that raises (as workerd's patch does) instead of reaching getentropy."""
    refuse_unless_allowed()
    return _urandom(size)


def restore_urandom() -> None:
    os.urandom = _urandom
