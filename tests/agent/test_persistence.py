"""Store: workspaces and terminal tabs survive a reopen (and a kill -9 of the writer)."""

from __future__ import annotations

import os
import signal
import sqlite3
import stat
import subprocess
import sys
import textwrap
from pathlib import Path

from agent.persistence import Store
from tests.support.agent import AgentProcess


def test_workspace_round_trip_and_update(tmp_path: Path) -> None:
    store = Store(tmp_path / "agent.db")
    saved = store.save_workspace(
        {"id": "ws-1", "repository": "https://example.invalid/r.git", "state": "pending"}
    )
    assert saved["created_at"] == saved["updated_at"]
    assert saved["branch"] is None

    store.save_workspace({"id": "ws-1", "state": "running", "container_id": "abc"})
    row = store.workspace("ws-1")
    assert row is not None
    assert row["state"] == "running"
    assert row["container_id"] == "abc"
    assert row["repository"] == "https://example.invalid/r.git"  # kept from the first save
    assert row["created_at"] == saved["created_at"]
    assert store.workspace("missing") is None


def test_remote_env_survives_updates_and_an_older_agents_database(tmp_path: Path) -> None:
    # The state directory of an agent from before remote_env: the column is added on open.
    with sqlite3.connect(tmp_path / "agent.db") as old:
        old.execute(
            "CREATE TABLE workspaces (id TEXT PRIMARY KEY, repository TEXT NOT NULL, "
            "branch TEXT, state TEXT NOT NULL, container_id TEXT, remote_user TEXT, "
            "remote_folder TEXT, directory TEXT, error TEXT, created_at TEXT NOT NULL, "
            "updated_at TEXT NOT NULL)"
        )
        old.execute(
            "INSERT INTO workspaces VALUES ('ws-old', '/r', NULL, 'running', 'c1', 'sam', "
            "'/workspaces/r', NULL, NULL, '2026-01-01T00:00:00.000Z', '2026-01-01T00:00:00.000Z')"
        )
    store = Store(tmp_path / "agent.db")
    assert store.workspace("ws-old")["remote_env"] is None  # type: ignore[index]
    env = {"GREETING": "a 'quoted' value; $(not run)", "EMPTY": ""}
    store.save_workspace({"id": "ws-old", "remote_env": env})
    store.save_workspace({"id": "ws-old", "state": "stopped"})  # kept, not re-encoded
    store.close()
    again = Store(tmp_path / "agent.db")
    [row] = again.workspaces()
    assert (row["remote_env"], row["state"], row["remote_user"]) == (env, "stopped", "sam")


def test_workspaces_listed_in_creation_order_and_deleted_with_tabs(tmp_path: Path) -> None:
    store = Store(tmp_path / "agent.db")
    for workspace_id in ("ws-a", "ws-b"):
        store.save_workspace({"id": workspace_id, "repository": "/r", "state": "pending"})
    store.add_tab("ws-a", "s1", "one")
    assert [w["id"] for w in store.workspaces()] == ["ws-a", "ws-b"]

    store.delete_workspace("ws-a")
    assert [w["id"] for w in store.workspaces()] == ["ws-b"]
    assert store.tabs("ws-a") == []


def test_tabs_keep_order_rename_and_remove(tmp_path: Path) -> None:
    store = Store(tmp_path / "agent.db")
    store.add_tab("ws", "s1", "shell")
    store.add_tab("ws", "s2", "build")
    store.add_tab("ws", "s3", "logs")
    store.add_tab("other", "s9", "elsewhere")

    assert store.rename_tab("ws", "s2", "tests") is True
    assert store.rename_tab("ws", "nope", "x") is False
    assert store.remove_tab("ws", "s1") is True
    assert store.remove_tab("ws", "s1") is False
    store.add_tab("ws", "s4", "new")

    tabs = store.tabs("ws")
    assert [(t["session_id"], t["name"]) for t in tabs] == [
        ("s2", "tests"),
        ("s3", "logs"),
        ("s4", "new"),
    ]
    assert tabs[0]["position"] < tabs[1]["position"] < tabs[2]["position"]
    assert set(tabs[0]) == {"workspace_id", "session_id", "name", "position", "created_at"}


def test_adding_an_existing_tab_renames_it_in_place(tmp_path: Path) -> None:
    store = Store(tmp_path / "agent.db")
    first = store.add_tab("ws", "s1", "shell")
    again = store.add_tab("ws", "s1", "renamed")
    assert again["position"] == first["position"]
    assert [t["name"] for t in store.tabs("ws")] == ["renamed"]


def test_uses_wal(tmp_path: Path) -> None:
    Store(tmp_path / "agent.db")
    with sqlite3.connect(tmp_path / "agent.db") as db:
        (mode,) = db.execute("PRAGMA journal_mode").fetchone()
    assert mode == "wal"


def test_state_survives_kill_9_of_the_writer(tmp_path: Path) -> None:
    db_path = tmp_path / "agent.db"
    writer = textwrap.dedent(
        f"""
        import sys, time
        from agent.persistence import Store
        store = Store({str(db_path)!r})
        store.save_workspace({{"id": "ws-k", "repository": "/r", "state": "running"}})
        store.add_tab("ws-k", "s1", "shell")
        store.add_tab("ws-k", "s2", "second")
        print("written", flush=True)
        time.sleep(60)
        """
    )
    root = Path(__file__).resolve().parents[2]
    process = subprocess.Popen(
        [sys.executable, "-c", writer], cwd=root, stdout=subprocess.PIPE, text=True
    )
    try:
        assert process.stdout is not None
        assert process.stdout.readline().strip() == "written"
        os.kill(process.pid, signal.SIGKILL)
        process.wait(timeout=10)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()

    store = Store(db_path)
    row = store.workspace("ws-k")
    assert row is not None and row["state"] == "running"
    assert [t["name"] for t in store.tabs("ws-k")] == ["shell", "second"]


def test_the_database_is_the_agents_alone_also_when_it_was_made_before(tmp_path: Path) -> None:
    path = tmp_path / "state" / "agent.sqlite3"
    store = Store(path)
    store.close()
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    path.chmod(0o644)  # as sqlite3 made it before this rule
    store = Store(path)
    try:
        for file in path.parent.iterdir():  # the database and its -wal/-shm
            assert stat.S_IMODE(file.stat().st_mode) == 0o600, file
    finally:
        store.close()


def test_the_running_agents_state_directory_is_private(agent: AgentProcess) -> None:
    assert stat.S_IMODE(agent.state_dir.stat().st_mode) == 0o700
    assert stat.S_IMODE((agent.state_dir / "agent.sqlite3").stat().st_mode) == 0o600
