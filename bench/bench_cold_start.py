"""The Worker's cold start under real Pyodide: importing the main module vs importing only
the packages it vendors, measured in the same run (the ratio is what our own modules add).

Run: .venv/bin/python bench/bench_cold_start.py [--runs N] [--smoke]
Each run starts a fresh Pyodide host (tests/pyodide/harness.py, the same one the suite uses)
and reads the import time the harness measured around `import entry` (or around importing
the vendored packages alone: tests/pyodide/mains/vendored_packages.py). Figures are medians;
the slowest packages of the last main-module run are listed. Nothing here asserts on time:
a failed import fails the run. `--smoke` is one run of each: that it runs, its figures
mean nothing.
"""

import argparse
import statistics
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.pyodide.harness import MAINS, PyodideWorker
from tests.support.wrangler import dry_run_bundle
from worker.auth.crypto import generate_key

SLOWEST_SHOWN = 8


def import_ms(bundle: Path, main: str | None) -> tuple[float, dict[str, float]]:
    extra = {} if main is None else {"main": main, "extra_paths": (MAINS,)}
    worker = PyodideWorker(bundle, secrets={"SAM_ENCRYPTION_KEY": generate_key()}, **extra)
    try:
        report = worker.report
        if not report.imported:
            raise SystemExit(f"{report.main} did not import: {report.failure}")
        return report.import_ms, report.milliseconds_by_package()
    finally:
        worker.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--smoke", action="store_true", help="one run of each, no figures")
    args = parser.parse_args()
    runs = 1 if args.smoke else args.runs
    with tempfile.TemporaryDirectory() as folder:
        bundle = dry_run_bundle(Path(folder))
        packages, whole, profile = [], [], {}
        for _ in range(runs):  # interleaved, so both see the same machine
            packages.append(import_ms(bundle, "vendored_packages")[0])
            ms, profile = import_ms(bundle, None)
            whole.append(ms)
    base, ours = statistics.median(packages), statistics.median(whole)
    print(f"vendored packages alone   {base:8.0f} ms (median of {runs})")
    print(f"main module (entry)       {ours:8.0f} ms  = {ours / base:.2f}x the packages alone")
    slowest = ", ".join(f"{name} {ms:.0f}" for name, ms in list(profile.items())[:SLOWEST_SHOWN])
    print(f"slowest packages (ms)     {slowest}")


if __name__ == "__main__":
    main()
