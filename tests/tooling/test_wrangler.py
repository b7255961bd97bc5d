"""The real wrangler (pinned in package.json) accepts our D1 migrations and wrangler.toml.

Both checks run offline: `d1 migrations apply --local` runs the SQL in wrangler's local
workerd against a database under tmp_path, and `deploy --dry-run` stops before uploading.
The dry run's bundle must carry the Worker's vendored packages (`python_modules/`, which
scripts/vendor-worker fills from pyproject.toml's [project] dependencies and wrangler uploads
from the project root).
"""

from pathlib import Path

import pytest

from tests.support.wrangler import PROJECT_ROOT, WRANGLER_CONFIG, dry_run_bundle, run_wrangler

# What may land in the bundle besides the main module: the worker, its Durable Objects and
# the wire package they share with the agent.
BUNDLE_PACKAGES = ("worker", "durable_objects", "wire")
NOT_BUNDLED_PREFIXES = (
    "twin/",
    "devtools/",
    "agent/",
    "tests/",
    ".venv/",
    "node_modules/",
    "pages/",
)
WRANGLER_OUTDIR_NOTE = "README.md"  # wrangler writes it into every --outdir
# The Worker's vendored dependencies; wrangler uploads them under this prefix.
VENDORED = "python_modules"
# Import names of packages the Worker cannot start without (the Worker's dependency list
# names fastapi, pydantic and workers-runtime-sdk; pydantic_core is the one compiled for
# WebAssembly).
VENDORED_PACKAGES = ("fastapi", "pydantic", "pydantic_core", "workers")


def migrations_dir(binding: str) -> Path:
    for database in WRANGLER_CONFIG.get("d1_databases", []):
        if database["binding"] == binding:
            return PROJECT_ROOT / database["migrations_dir"]
    pytest.fail(f"wrangler.toml has no D1 database bound as {binding}")


@pytest.mark.parametrize("binding", ["DATABASE", "OBSERVABILITY_DATABASE"])
def test_d1_migrations_apply_locally(binding: str, tmp_path: Path) -> None:
    migrations = sorted(path.name for path in migrations_dir(binding).glob("*.sql"))
    assert migrations, f"no migrations in {migrations_dir(binding)}"

    output = run_wrangler(
        tmp_path,
        *("d1", "migrations", "apply", binding, "--local"),
        *("--persist-to", str(tmp_path / "state")),
    )

    for name in migrations:
        assert name in output, f"{name} was not applied:\n{output}"


def bundle_sources(main: str) -> set[str]:
    """The project's modules that belong in the bundle, as paths from the project root."""
    sources = set()
    for package in BUNDLE_PACKAGES:
        for path in (PROJECT_ROOT / package).rglob("*.py"):
            name = path.relative_to(PROJECT_ROOT).as_posix()
            if "__pycache__" not in path.parts and not name.startswith(NOT_BUNDLED_PREFIXES):
                sources.add(name)
    return sources - {main}


def vendored_files() -> set[str]:
    """The files scripts/vendor-worker unpacked, as paths in the bundle."""
    root = PROJECT_ROOT / VENDORED
    if not root.is_dir():
        pytest.fail(f"{VENDORED}/ is missing: run scripts/vendor-worker (scripts/setup does)")
    return {
        f"{VENDORED}/{path.relative_to(root).as_posix()}"
        for path in root.rglob("*")
        if path.is_file() and path.suffix != ".pyc"  # wrangler's default python_modules exclude
    }


def test_deploy_dry_run_bundles_the_worker_and_nothing_else(tmp_path: Path) -> None:
    vendored = vendored_files()

    outdir = dry_run_bundle(tmp_path)

    landed = {path.relative_to(outdir).as_posix() for path in outdir.rglob("*") if path.is_file()}
    main = WRANGLER_CONFIG["main"]
    # wrangler uploads the main module under its file name, at the root of the bundle.
    assert Path(main).name in landed, sorted(landed)
    assert any(path.startswith("durable_objects/") for path in landed), (
        f"no durable_objects/ module in the bundle: {sorted(landed)}"
    )
    missing = bundle_sources(main) - landed
    assert not missing, f"modules left out of the bundle: {sorted(missing)}"
    missing_vendored = vendored - landed
    assert not missing_vendored, f"vendored files left out: {sorted(missing_vendored)[:20]}"
    for package in VENDORED_PACKAGES:
        assert f"{VENDORED}/{package}/__init__.py" in landed, f"{package} is not vendored"

    stray = sorted(
        path
        for path in landed - {Path(main).name, WRANGLER_OUTDIR_NOTE} - vendored
        if path.startswith(NOT_BUNDLED_PREFIXES)
        or "__pycache__" in path
        or "node_modules" in path
        or path.split("/")[0] not in BUNDLE_PACKAGES
    )
    assert not stray, f"files that must not be bundled: {stray}"
