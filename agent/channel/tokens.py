"""Channel tokens and ports kept across an agent restart, owner-only.

One 0600 file per workspace in a 0700 directory of the agent's state dir (the node's, never
mounted into a workspace), so a restarted agent opens the same channel again and what runs
in the workspace keeps working. Deleted with the workspace.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
from dataclasses import dataclass
from pathlib import Path

PRIVATE_DIR_MODE = 0o700
PRIVATE_FILE_MODE = 0o600
TOKEN_BYTES = 32  # 256 random bits


@dataclass(frozen=True)
class Stored:
    token: str
    port: int


def new_token() -> str:
    return secrets.token_urlsafe(TOKEN_BYTES)


class TokenStore:
    def __init__(self, directory: Path) -> None:
        self.directory = directory

    def load(self, workspace_id: str) -> Stored | None:
        try:
            data = json.loads(self._path(workspace_id).read_text())
            return Stored(str(data["token"]), int(data["port"]))
        except (OSError, ValueError, KeyError, TypeError):
            return None  # none yet, or unreadable: the caller issues a new token

    def save(self, workspace_id: str, stored: Stored) -> None:
        self.directory.mkdir(mode=PRIVATE_DIR_MODE, parents=True, exist_ok=True)
        self.directory.chmod(PRIVATE_DIR_MODE)
        path = self._path(workspace_id)
        partial = path.with_suffix(".partial")
        descriptor = os.open(partial, os.O_CREAT | os.O_WRONLY | os.O_TRUNC, PRIVATE_FILE_MODE)
        with os.fdopen(descriptor, "w") as file:
            json.dump({"token": stored.token, "port": stored.port}, file)
        os.replace(partial, path)

    def forget(self, workspace_id: str) -> None:
        with contextlib.suppress(FileNotFoundError):
            self._path(workspace_id).unlink()

    def _path(self, workspace_id: str) -> Path:
        # Workspace ids are letters, digits and '-' (WORKSPACE_ID_PATTERN): safe as a name.
        assert "/" not in workspace_id and not workspace_id.startswith(".")
        return self.directory / f"{workspace_id}.json"
