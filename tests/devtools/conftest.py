from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.edge import Edge, running_edge


@pytest.fixture(scope="package")
def edge(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Edge]:
    """One `sam dev` process on the project's real wrangler.toml, shared by this folder."""
    data_dir: Path = tmp_path_factory.mktemp("edge") / ".sam"
    with running_edge(data_dir) as running:
        yield running
