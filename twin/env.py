"""Build the worker's `env` from wrangler.toml, with every binding's state in one directory.

<data_dir>/d1/<database_name>.sqlite
<data_dir>/kv/<id>.sqlite
<data_dir>/r2/<bucket_name>.sqlite
<data_dir>/do/<ClassName>/<object id>.sqlite
"""

import importlib
import sys
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any

from twin.alarms import AlarmScheduler
from twin.assets import AssetsBinding
from twin.clock import Clock
from twin.d1 import D1Database
from twin.durable_objects import DurableObjectNamespace
from twin.kv import KVNamespace
from twin.migrations import apply_migrations
from twin.private_files import private_dir
from twin.r2 import R2Bucket
from twin.wrangler import WranglerConfig


class Env:
    """The bindings and vars, as attributes (`env.DATABASE`, `env.SAM_DOMAIN`)."""

    def __init__(self, values: dict[str, Any]) -> None:
        self.__dict__.update(values)

    def __repr__(self) -> str:
        return f"Env({', '.join(sorted(self.__dict__))})"


class RawBinding:
    """A binding as workerd hands it to `scheduled(controller, env, ctx)`: the raw JS object,
    not the SDK's wrapper that `self.env` holds. Its results are JS proxies (`result["meta"]`
    fails there), so the twin refuses any use, naming the fix."""

    def __init__(self, name: str) -> None:
        self._name = name

    def __getattr__(self, attribute: str) -> Any:
        raise TypeError(
            f"env.{self._name}.{attribute}: the `env` argument of scheduled() holds the raw JS "
            "bindings on Cloudflare, not the SDK's wrappers; use self.env"
        )


def raw_bindings(env: Env) -> dict[str, Any]:
    """`env` as workerd passes it to `scheduled`: a plain dict, each binding raw (vars and
    secrets are strings either way)."""
    return {
        name: value if isinstance(value, str) else RawBinding(name)
        for name, value in vars(env).items()
    }


@dataclass
class Runtime:
    """What the local edge owns for one configuration: the entry module, env and timers."""

    module: ModuleType
    env: Env
    alarms: AlarmScheduler
    applied_migrations: dict[str, list[str]] = field(default_factory=dict)
    _closables: list[Any] = field(default_factory=list)

    def close(self) -> None:
        for binding in self._closables:
            binding.close()


def load_module(config: WranglerConfig) -> ModuleType:
    base = str(config.root)
    if base not in sys.path:
        sys.path.insert(0, base)
    return importlib.import_module(config.main_module)


def build(
    config: WranglerConfig, data_dir: Path, clock: Clock, overrides: dict[str, str]
) -> Runtime:
    module = load_module(config)
    values: dict[str, Any] = {**config.vars, **overrides}
    closables: list[Any] = []
    applied: dict[str, list[str]] = {}

    for database in config.d1_databases:
        path = data_dir / "d1" / f"{database.database_name}.sqlite"
        private_dir(path.parent)
        applied[database.binding] = apply_migrations(path, database.migrations_dir)
        values[database.binding] = D1Database(path)
        closables.append(values[database.binding])
    for namespace in config.kv_namespaces:
        values[namespace.binding] = KVNamespace(data_dir / "kv" / f"{namespace.id}.sqlite", clock)
        closables.append(values[namespace.binding])
    for bucket in config.r2_buckets:
        values[bucket.binding] = R2Bucket(data_dir / "r2" / f"{bucket.bucket_name}.sqlite")
        closables.append(values[bucket.binding])
    if config.assets is not None:
        values[config.assets.binding] = AssetsBinding(
            config.assets.directory, config.assets.not_found_handling
        )

    env = Env(values)
    alarms = AlarmScheduler(data_dir / "do", clock)
    for binding in config.durable_objects:
        cls = getattr(module, binding.class_name, None)
        if cls is None:
            raise LookupError(
                f"{config.main} does not export the Durable Object class "
                f"{binding.class_name!r} that binding {binding.name} names"
            )
        namespace = DurableObjectNamespace(
            cls, data_dir / "do" / binding.class_name, lambda: env, alarms
        )
        setattr(env, binding.name, namespace)
        closables.append(namespace)
    return Runtime(module, env, alarms, applied, closables)
