"""Our packages' import graph as lint-imports sees it (grimp), for the tooling tests."""

import sys
import tomllib
from pathlib import Path

import grimp

ROOT = Path(__file__).resolve().parents[2]
IMPORT_LINTER = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["importlinter"]
PACKAGES: list[str] = IMPORT_LINTER["root_packages"]


def import_graph(*, third_party: bool) -> grimp.ImportGraph:
    """Every module of ours (and, if `third_party`, every top-level package they import)."""
    return grimp.build_graph(*PACKAGES, include_external_packages=third_party, cache_dir=None)


def third_party_imports(graph: grimp.ImportGraph, packages: list[str]) -> set[str]:
    """The top-level names outside ours and the standard library that `packages` import."""
    return {
        imported
        for module in graph.modules
        if module.split(".")[0] in packages
        for imported in graph.find_modules_directly_imported_by(module)
        if imported.split(".")[0] not in PACKAGES and imported not in sys.stdlib_module_names
    }
