"""No import cycles among our modules, found with grimp (import-linter's graph library).

import-linter's own cycle contract (`acyclic_siblings`) compares sibling packages: it cannot
see a cycle between two top-level packages (worker and durable_objects, say), and it also
forbids two subpackages that import each other without any module cycle. The rule here is
the plain one: no module reaches itself through imports, type-only imports included.
"""

from pathlib import Path

import grimp
import pytest

from tests.tooling.imports import import_graph


def import_cycles(graph: grimp.ImportGraph) -> list[list[str]]:
    """A cycle through each module that is on one (until reported), as `[a, b, …, a]`."""
    cycles: list[list[str]] = []
    reported: set[str] = set()
    for module in sorted(graph.modules):
        if module in reported:
            continue
        for imported in sorted(graph.find_modules_directly_imported_by(module)):
            back = graph.find_shortest_chain(importer=imported, imported=module)
            if back:
                cycles.append([module, *back])
                reported.update(back)
                break
    return cycles


def describe(cycles: list[list[str]]) -> str:
    return "\n".join(" -> ".join(cycle) for cycle in cycles)


def test_our_modules_import_no_cycle() -> None:
    cycles = import_cycles(import_graph(third_party=False))
    assert not cycles, f"import cycles (break each one):\n{describe(cycles)}"


def test_a_cycle_is_found_and_named(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Within a package, across two packages, and through a type-only import."""
    files = {
        "loop_one/__init__.py": "",
        "loop_one/a.py": "import loop_two.b\n",
        "loop_one/c.py": "from loop_one import d\n",
        "loop_one/d.py": (
            "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from loop_one.c import C\n"
        ),
        "loop_two/__init__.py": "",
        "loop_two/b.py": "from loop_one import a\n",
    }
    for name, text in files.items():
        (tmp_path / name).parent.mkdir(exist_ok=True)
        (tmp_path / name).write_text(text)
    monkeypatch.syspath_prepend(str(tmp_path))

    cycles = import_cycles(grimp.build_graph("loop_one", "loop_two", cache_dir=None))

    assert describe(cycles) == (
        "loop_one.a -> loop_two.b -> loop_one.a\nloop_one.c -> loop_one.d -> loop_one.c"
    )
