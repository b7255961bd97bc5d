"""The web app's API types are generated, never written by hand: this regenerates them
from the live /api/openapi.json of a real local edge with the pinned openapi-typescript
and fails when the committed pages/src/api/openapi.d.ts differs."""

import difflib
import subprocess
from pathlib import Path

from tests.support.edge import running_edge

ROOT = Path(__file__).resolve().parents[2]
GENERATED = ROOT / "pages" / "src" / "api" / "openapi.d.ts"
TOOL = ROOT / "node_modules" / ".bin" / "openapi-typescript"
REGENERATE = "npm run api:types"
TIMEOUT_SECONDS = 120
DIFF_LINES = 40


def test_the_committed_api_types_match_the_live_openapi_document(tmp_path: Path) -> None:
    assert TOOL.exists(), f"{TOOL} is missing: run `npm ci`"
    with running_edge(tmp_path / "sam") as edge, edge.client() as client:
        document = client.get("/api/openapi.json")
    assert document.status_code == 200, document.text
    fresh = tmp_path / "openapi.d.ts"
    done = subprocess.run(
        [str(TOOL), "--output", str(fresh)],
        input=document.content,
        cwd=ROOT,  # as `npm run api:types` runs it
        capture_output=True,
        timeout=TIMEOUT_SECONDS,
    )
    assert done.returncode == 0, done.stderr.decode(errors="replace")
    committed = GENERATED.read_text() if GENERATED.exists() else ""
    diff = list(
        difflib.unified_diff(
            committed.splitlines(), fresh.read_text().splitlines(), "committed", "live", lineterm=""
        )
    )
    assert not diff, (
        f"{GENERATED.relative_to(ROOT)} is stale: with `sam dev` running, regenerate it with "
        f"`{REGENERATE}` (SAM_PORT=<port> if not 8787) and commit it.\n"
        + "\n".join(diff[:DIFF_LINES])
    )
