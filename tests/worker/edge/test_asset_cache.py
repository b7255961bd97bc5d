"""The app's hashed files are kept by the browser for good; its pages are asked for again
at each load, so a deploy shows at once (worker/edge/asset_cache.py)."""

import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.edge import Edge, running_edge
from worker.edge.asset_cache import IMMUTABLE

ROOT = Path(__file__).resolve().parents[3]


@pytest.fixture(scope="module")
def edge(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Edge]:
    with running_edge(tmp_path_factory.mktemp("asset-cache") / ".sam") as running:
        yield running


def built_assets() -> list[str]:
    index = (ROOT / "pages" / "dist" / "index.html").read_text()
    found = re.findall(r'(?:src|href)="(/assets/[^"]+)"', index)
    assert found, "pages/dist/index.html names no /assets/ file"
    return found


@pytest.mark.parametrize("path", built_assets())
def test_a_hashed_file_is_kept_for_good(edge: Edge, path: str) -> None:
    with edge.client("app") as client:
        response = client.get(path)
        assert response.status_code == 200
        assert response.headers["cache-control"] == IMMUTABLE
        # Revalidated anyway (a forced reload): still immutable, still no body.
        again = client.get(path, headers={"if-none-match": response.headers["etag"]})
    assert again.status_code == 304
    assert again.headers["cache-control"] == IMMUTABLE


@pytest.mark.parametrize("path", ["/", "/projects/p1/chats/c1", "/favicon.svg"])
def test_a_page_or_unhashed_file_is_asked_for_again(edge: Edge, path: str) -> None:
    with edge.client("app") as client:
        response = client.get(path)
    assert response.status_code == 200
    assert "immutable" not in response.headers["cache-control"]
    assert "max-age=0" in response.headers["cache-control"]


def test_a_missing_hashed_file_answered_by_the_app_page_is_not_kept(edge: Edge) -> None:
    # An old page naming a script a deploy removed: the SPA fallback's index.html must not
    # be cached under the script's name for a year.
    with edge.client("app") as client:
        response = client.get("/assets/index-gone0000.js")
    assert response.headers["content-type"].startswith("text/html")
    assert "immutable" not in response.headers["cache-control"]
