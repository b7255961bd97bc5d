"""Fresh binding twins on a temporary data directory; time moves only when a test says."""

from collections.abc import Iterator
from pathlib import Path

import pytest

from twin.clock import ManualClock
from twin.d1 import D1Database
from twin.kv import KVNamespace
from twin.r2 import R2Bucket


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return tmp_path / "d1" / "DB.sqlite"


@pytest.fixture
def db(db_path: Path) -> Iterator[D1Database]:
    database = D1Database(db_path)
    yield database
    database.close()


@pytest.fixture
def kv_path(tmp_path: Path) -> Path:
    return tmp_path / "kv" / "KV.sqlite"


@pytest.fixture
def kv(kv_path: Path, clock: ManualClock) -> Iterator[KVNamespace]:
    namespace = KVNamespace(kv_path, clock)
    yield namespace
    namespace.close()


@pytest.fixture
def r2_path(tmp_path: Path) -> Path:
    return tmp_path / "r2" / "BUCKET.sqlite"


@pytest.fixture
def bucket(r2_path: Path, clock: ManualClock) -> Iterator[R2Bucket]:
    r2 = R2Bucket(r2_path, clock)
    yield r2
    r2.close()
