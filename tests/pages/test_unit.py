"""The web app's unit tests (vitest, tests/pages/*.test.ts), run as part of the suite.

`npm test` type-checks the tests with tsc, then runs vitest in Node: the terminal codec
against every golden frame in tests/golden/terminal/, the reconnecting client, the
agent-session frames against tests/golden/agent_session/, how those frames become the
conversation the Agent tab shows, and its components rendered to HTML (markdown without raw
HTML, diffs, tool cards); the project chat's frames against tests/golden/project_chat/, its
messages as a conversation, and the project screens' addresses.
"""

import os
import re
import shutil
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
TIMEOUT_SECONDS = 120


def test_vitest_unit_tests_pass() -> None:
    npm = shutil.which("npm")
    assert npm, "npm not found: install Node.js 20 or newer (scripts/setup checks this)"
    done = subprocess.run(
        [npm, "run", "--silent", "test"],
        cwd=ROOT,
        env={**os.environ, "CI": "true", "NO_COLOR": "1", "FORCE_COLOR": "0"},
        capture_output=True,
        text=True,
        timeout=TIMEOUT_SECONDS,
    )
    assert done.returncode == 0, f"npm test failed:\n{done.stdout}\n{done.stderr}"
    assert re.search(r"Tests\s+\d+ passed", done.stdout), done.stdout
