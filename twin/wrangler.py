"""wrangler.toml, read the way the local edge needs it: bindings, vars, crons, assets.

Parsed once into frozen dataclasses; a missing or malformed field is named in the error.
"""

import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


class WranglerConfigError(ValueError):
    pass


@dataclass(frozen=True)
class D1Binding:
    binding: str
    database_name: str
    migrations_dir: Path


@dataclass(frozen=True)
class KVBinding:
    binding: str
    id: str


@dataclass(frozen=True)
class R2Binding:
    binding: str
    bucket_name: str


@dataclass(frozen=True)
class DurableObjectBinding:
    name: str
    class_name: str


@dataclass(frozen=True)
class Assets:
    binding: str
    directory: Path
    not_found_handling: str


@dataclass(frozen=True)
class WranglerConfig:
    path: Path
    name: str
    main: Path
    vars: dict[str, Any] = field(default_factory=dict)
    crons: tuple[str, ...] = ()
    d1_databases: tuple[D1Binding, ...] = ()
    kv_namespaces: tuple[KVBinding, ...] = ()
    r2_buckets: tuple[R2Binding, ...] = ()
    durable_objects: tuple[DurableObjectBinding, ...] = ()
    assets: Assets | None = None

    @property
    def root(self) -> Path:
        """The project folder: where wrangler.toml is. (`base_dir` names wrangler's staged
        bundle, which only exists during a deploy.)"""
        return self.path.parent

    @property
    def main_module(self) -> str:
        """`main` as an importable module name, relative to the project folder."""
        return ".".join(self.main.relative_to(self.root).with_suffix("").parts)


def load(path: Path) -> WranglerConfig:
    path = path.resolve()
    try:
        raw = tomllib.loads(path.read_text())
    except FileNotFoundError:
        raise WranglerConfigError(f"{path} does not exist") from None
    except tomllib.TOMLDecodeError as exc:
        raise WranglerConfigError(f"{path} is not valid TOML: {exc}") from exc
    root = path.parent

    def need(table: dict[str, Any], key: str, where: str) -> Any:
        if key not in table:
            raise WranglerConfigError(f"{path}: {where} has no `{key}`")
        return table[key]

    assets = raw.get("assets")
    return WranglerConfig(
        path=path,
        name=need(raw, "name", "the top level"),
        main=(root / need(raw, "main", "the top level")).resolve(),
        vars=dict(raw.get("vars", {})),
        crons=tuple(raw.get("triggers", {}).get("crons", ())),
        d1_databases=tuple(
            D1Binding(
                need(d, "binding", "[[d1_databases]]"),
                need(d, "database_name", "[[d1_databases]]"),
                root / d.get("migrations_dir", "migrations"),
            )
            for d in raw.get("d1_databases", ())
        ),
        kv_namespaces=tuple(
            KVBinding(need(k, "binding", "[[kv_namespaces]]"), need(k, "id", "[[kv_namespaces]]"))
            for k in raw.get("kv_namespaces", ())
        ),
        r2_buckets=tuple(
            R2Binding(
                need(r, "binding", "[[r2_buckets]]"), need(r, "bucket_name", "[[r2_buckets]]")
            )
            for r in raw.get("r2_buckets", ())
        ),
        durable_objects=tuple(
            DurableObjectBinding(
                need(b, "name", "[[durable_objects.bindings]]"),
                need(b, "class_name", "[[durable_objects.bindings]]"),
            )
            for b in raw.get("durable_objects", {}).get("bindings", ())
        ),
        assets=Assets(
            need(assets, "binding", "[assets]"),
            root / need(assets, "directory", "[assets]"),
            assets.get("not_found_handling", "none"),
        )
        if assets
        else None,
    )
