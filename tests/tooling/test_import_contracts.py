"""The import contracts in pyproject.toml hold, and each one bites.

For every contract, `lint-imports` runs on a temporary copy of our packages holding one
throwaway module with an import that contract forbids, and must fail naming exactly that
contract; on the real tree it passes. Nothing is written into the project.
"""

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.tooling.imports import (
    IMPORT_LINTER,
    PACKAGES,
    ROOT,
    import_graph,
    third_party_imports,
)

CONTRACTS = {contract["id"]: contract for contract in IMPORT_LINTER["contracts"]}
LINT_IMPORTS = Path(sys.executable).with_name("lint-imports")
LINT_TIMEOUT_SECONDS = 60
THROWAWAY = "throwaway_forbidden_import.py"
ALLOWED_IN_WIRE = "pydantic"
BROKEN = re.compile(r"^(.+) BROKEN(?: \(.*\))?$", re.MULTILINE)

# (the contract that forbids it, the package a throwaway module goes into, what it imports)
FORBIDDEN_IMPORTS = [
    ("agent", "agent", "worker.config"),
    ("agent", "agent.terminals", "twin.d1"),
    ("agent", "agent", "devtools.cli"),
    ("agent", "agent", "durable_objects.node_lifecycle"),
    ("twin", "twin", "worker.platform"),
    ("twin", "twin", "wire.version"),
    ("twin", "twin", "devtools.local_nodes"),
    ("wire", "wire", "worker.config"),
    ("wire", "wire", "agent.config"),
    ("wire", "wire", "fastapi"),
    ("wire", "wire", "aiohttp"),
    ("worker", "worker", "twin.d1"),
    ("worker", "worker.nodes", "devtools.local_nodes"),
    ("worker", "worker.api", "agent.server"),
    ("durable_objects", "durable_objects", "twin.storage"),
    ("durable_objects", "durable_objects", "devtools.cli"),
    ("durable_objects", "durable_objects", "agent.config"),
]


def lint_imports(cwd: Path) -> subprocess.CompletedProcess[str]:
    """`lint-imports` as scripts/test runs it; it imports our packages from `cwd` first."""
    return subprocess.run(
        [str(LINT_IMPORTS), "--no-cache", "--no-logo"],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=LINT_TIMEOUT_SECONDS,
    )


def broken_contracts(output: str) -> list[str]:
    """The names lint-imports reports as `NAME BROKEN` (maybe followed by `(N ignored imports)`)."""
    return [match[1] for match in BROKEN.finditer(output)]


def copy_of_the_packages(into: Path) -> Path:
    for package in PACKAGES:
        shutil.copytree(
            ROOT / package, into / package, ignore=shutil.ignore_patterns("__pycache__")
        )
    shutil.copy(ROOT / "pyproject.toml", into / "pyproject.toml")
    return into


def test_the_real_tree_keeps_every_contract() -> None:
    done = lint_imports(ROOT)
    assert done.returncode == 0, done.stdout + done.stderr
    assert broken_contracts(done.stdout) == []
    assert f"Contracts: {len(CONTRACTS)} kept, 0 broken." in done.stdout


@pytest.mark.parametrize(("contract", "package", "imported"), FORBIDDEN_IMPORTS)
def test_a_forbidden_import_breaks_its_contract(
    contract: str, package: str, imported: str, tmp_path: Path
) -> None:
    tree = copy_of_the_packages(tmp_path)
    module = tree / package.replace(".", "/") / THROWAWAY
    module.write_text(f"import {imported}\n")

    done = lint_imports(tree)

    assert done.returncode != 0, done.stdout
    assert broken_contracts(done.stdout) == [CONTRACTS[contract]["name"]], done.stdout
    assert f"{package}.{THROWAWAY.removesuffix('.py')} -> {imported}" in done.stdout


def test_every_contract_is_proven_to_bite() -> None:
    assert {contract for contract, _, _ in FORBIDDEN_IMPORTS} == set(CONTRACTS)


def test_wire_forbids_every_third_party_package_our_code_imports_but_pydantic() -> None:
    """A new dependency anywhere must join the wire contract's list, or wire could take it."""
    third_party = third_party_imports(import_graph(third_party=True), PACKAGES)
    forbidden = set(CONTRACTS["wire"]["forbidden_modules"])
    assert third_party - forbidden == {ALLOWED_IN_WIRE}
