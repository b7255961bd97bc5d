"""Every file the twin writes under the data directory is its owner's alone: directories
0700, database files (and their -wal/-shm) 0600, also for files made before this rule."""

import stat
from pathlib import Path

from tests.support.edge import running_edge, signed_in
from tests.twin.do_fixtures import Twin
from twin.clock import ManualClock
from twin.d1 import D1Database
from twin.entrypoints import DurableObject
from twin.kv import KVNamespace
from twin.private_files import PRIVATE_DIR_MODE, PRIVATE_FILE_MODE
from twin.r2 import R2Bucket


class Keeper(DurableObject):
    async def keep(self) -> None:
        await self.ctx.storage.put("kept", True)
        await self.ctx.storage.setAlarm(self.env.clock.now() * 1000 + 60_000)

    async def alarm(self, info: object) -> None:
        pass


def modes_under(root: Path) -> dict[str, int]:
    return {
        str(path.relative_to(root)): stat.S_IMODE(path.stat().st_mode)
        for path in [root, *root.rglob("*")]
    }


def assert_private(root: Path) -> None:
    modes = modes_under(root)
    loose = {
        name: oct(mode)
        for name, mode in modes.items()
        if mode != (PRIVATE_DIR_MODE if (root / name).is_dir() else PRIVATE_FILE_MODE)
    }
    assert not loose, f"readable by others: {loose}"


async def use_every_binding(data_dir: Path, clock: ManualClock) -> None:
    database = D1Database(data_dir / "d1" / "sam.sqlite")
    await database.exec("CREATE TABLE IF NOT EXISTS t (x TEXT)")
    await database.prepare("INSERT INTO t VALUES (?)").bind("secret").run()
    database.close()
    kv = KVNamespace(data_dir / "kv" / "ns.sqlite", clock)
    await kv.put("session:x", "secret")
    kv.close()
    bucket = R2Bucket(data_dir / "r2" / "bucket.sqlite", clock)
    await bucket.put("agent.tar.gz", b"bytes")
    bucket.close()
    twin = Twin(data_dir, clock)
    twin.env.clock = clock
    keepers = twin.bind("KEEPERS", Keeper)
    async with twin:
        await keepers.get(keepers.idFromName("one")).keep()


async def test_every_binding_writes_owner_only_files(tmp_path: Path) -> None:
    data_dir = tmp_path / ".sam"
    await use_every_binding(data_dir, ManualClock())
    assert len(modes_under(data_dir)) > 8  # d1, kv, r2, DO storage and the alarm index
    assert_private(data_dir)


async def test_files_from_before_are_tightened(tmp_path: Path) -> None:
    data_dir = tmp_path / ".sam"
    await use_every_binding(data_dir, ManualClock())
    for path in data_dir.rglob("*"):  # the data directory itself is the edge's (below)
        path.chmod(0o755 if path.is_dir() else 0o644)
    await use_every_binding(data_dir, ManualClock())
    assert_private(data_dir)


def test_the_local_edge_keeps_its_data_directory_private(tmp_path: Path) -> None:
    data_dir = tmp_path / ".sam"
    with running_edge(data_dir) as edge:
        signed_in(edge, "private").close()
        assert (data_dir / "dev-secrets.json").exists()
        assert_private(data_dir)
    data_dir.chmod(0o755)
    with running_edge(data_dir):
        assert_private(data_dir)
