"""After the whole suite: no log it produced holds a token.

Every edge, node agent and `sam dev` the suite starts writes its log under pytest's base
temporary directory (`*.log`). When the run ends, each is searched for anything shaped like
a credential SAM issues — a JWT (terminal, agent, node and workspace tokens) or a personal
API token (`sam_pat_…`) — and a hit fails the run, naming the file and line with the token
cut short. Shapes rather than a list of the exact strings: most tokens are minted inside the
edge's process, where the suite cannot collect them, and a shape also catches a forged token
an attacker sent, which must not be logged either.
"""

import os
import re
from pathlib import Path

import pytest

TOKEN_SHAPES = re.compile(
    rb"eyJ[A-Za-z0-9_-]{8,}\.eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{16,}"  # a JWS compact JWT
    rb"|sam_pat_[A-Za-z0-9_-]{16,}"
)
SHOWN_CHARS = 12
MAX_REPORTED = 20


def find_tokens(root: Path) -> list[str]:
    """`file:line: <token cut short>` for each token-shaped string in a log under `root`."""
    found: list[str] = []
    assert root.is_dir(), f"the suite's temporary directory {root} is gone: nothing to scan"
    logs = sorted(
        Path(folder) / name
        for folder, _, names in os.walk(root)  # a folder removed meanwhile is skipped
        for name in names
        if name.endswith(".log")
    )
    for path in logs:
        try:
            text = path.read_bytes()
        except OSError:  # removed meanwhile by a test's teardown, or not a regular file
            continue
        for number, line in enumerate(text.splitlines(), 1):
            for match in TOKEN_SHAPES.finditer(line):
                shown = match.group()[:SHOWN_CHARS].decode(errors="replace")
                found.append(f"{path.relative_to(root)}:{number}: {shown}…")
    return found


@pytest.hookimpl(trylast=True)
def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    factory = getattr(session.config, "_tmp_path_factory", None)
    if factory is None or getattr(session.config, "workerinput", None) is not None:
        return
    found = find_tokens(factory.getbasetemp())
    if not found:
        return
    reporter = session.config.pluginmanager.get_plugin("terminalreporter")
    if reporter is not None:
        reporter.write_sep("=", "tokens in the logs this run produced", red=True)
        for hit in found[:MAX_REPORTED]:
            reporter.write_line(hit)
        if len(found) > MAX_REPORTED:
            reporter.write_line(f"… and {len(found) - MAX_REPORTED} more")
    session.exitstatus = pytest.ExitCode.TESTS_FAILED
