"""Run a module's top level inside the context a patch registered for that module.

The names are the ones the vendored SDK imports: `register_create_patch`,
`register_exec_patch`, `register_after_snapshot`, `register_before_first_request`,
`block_calls`. A patch applies to the first import of its module after `install()`.
"""

import sys
from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass, field
from functools import partial, wraps
from importlib.abc import MetaPathFinder
from importlib.machinery import ModuleSpec
from types import ModuleType
from typing import Any


@dataclass
class Patch:
    create: Callable[[ModuleSpec], AbstractContextManager] = nullcontext
    exec: Callable[[ModuleType], AbstractContextManager] = nullcontext
    before_first_request: list[Callable[[ModuleType], None]] = field(default_factory=list)


PATCHES: dict[str, Patch] = {}
BEFORE_FIRST_REQUEST: list[Callable[[], None]] = []
_BLOCKED: dict[str, ModuleType] = {}


def _register(attribute: str, name: str, value: Any = None) -> Any:
    if value is None:  # used as a decorator
        return partial(_register, attribute, name)
    setattr(PATCHES.setdefault(name, Patch()), attribute, value)
    return value


register_create_patch = partial(_register, "create")
register_exec_patch = partial(_register, "exec")


def register_before_first_request(name: str, handler: Any = None) -> Any:
    if handler is None:
        return partial(register_before_first_request, name)
    PATCHES.setdefault(name, Patch()).before_first_request.append(handler)
    return handler


def register_after_snapshot(name: str, handler: Any = None) -> Any:
    # No memory snapshot is taken in the harness, so there is nothing to check after one.
    return partial(register_after_snapshot, name) if handler is None else handler


class _PatchedLoader:
    def __init__(self, loader: Any, patch: Patch) -> None:
        self._loader = loader
        self._patch = patch

    def __getattr__(self, name: str) -> Any:
        return getattr(self._loader, name)

    def create_module(self, spec: ModuleSpec) -> ModuleType | None:
        with self._patch.create(spec):
            return self._loader.create_module(spec)

    def exec_module(self, module: ModuleType) -> None:
        BEFORE_FIRST_REQUEST.extend(partial(h, module) for h in self._patch.before_first_request)
        with self._patch.exec(module):
            self._loader.exec_module(module)


class PatchFinder(MetaPathFinder):
    def find_spec(self, fullname: str, path: Any, target: Any = None) -> ModuleSpec | None:
        patch = PATCHES.get(fullname)
        if patch is None:
            return None
        for finder in sys.meta_path:
            if finder is not self and (spec := finder.find_spec(fullname, path, target)):
                spec.loader = _PatchedLoader(spec.loader, patch)
                return spec
        return None


def install() -> None:
    sys.meta_path.insert(0, PatchFinder())


def remove() -> None:
    sys.meta_path[:] = [f for f in sys.meta_path if not isinstance(f, PatchFinder)]
    sys.modules.update(_BLOCKED)


class _BlockedModule:
    """`module` whose callables (but `allowlist`) refuse to run before the first request."""

    def __init__(self, module: ModuleType, allowlist: tuple[str, ...]) -> None:
        object.__setattr__(self, "_module", module)
        object.__setattr__(self, "_allowlist", allowlist)

    def __getattribute__(self, name: str) -> Any:
        module = object.__getattribute__(self, "_module")
        value = getattr(module, name)
        if not callable(value) or name in object.__getattribute__(self, "_allowlist"):
            return value

        @wraps(value)
        def refused(*args: Any, **kwargs: Any) -> Any:
            raise RuntimeError(f"Cannot use {module.__name__}.{name}() outside of request context")

        return refused

    def __setattr__(self, name: str, value: Any) -> None:
        setattr(object.__getattribute__(self, "_module"), name, value)


def block_calls(module: ModuleType, *, allowlist: tuple[str, ...] = ()) -> None:
    _BLOCKED[module.__name__] = module
    sys.modules[module.__name__] = _BlockedModule(module, allowlist)  # type: ignore[assignment]
