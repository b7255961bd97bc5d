"""A node and a workspace of a signed-in user's, written into a running edge's D1 as
provisioning leaves them, and that node's `sam:node` token: what the workspace callbacks
(git token, agent credential) are called with.

    placed = PlacedWorkspace(edge, "dana", "0123456789ab", "https://github.com/dana/app")
    auth = {"Authorization": f"Bearer {placed.node_token}"}
    api.post(f"/api/workspaces/{placed.workspace_id}/git-token", headers=auth)
    placed.close()
"""

import asyncio

from tests.support.edge import Edge
from tests.support.edge_tokens import EdgeSigner
from worker.auth import scoped_tokens


class PlacedWorkspace:
    def __init__(
        self, edge: Edge, login: str, suffix: str, repository: str = "https://github.com/o/r"
    ) -> None:
        self.signer = EdgeSigner(edge.data_dir, edge.domain)
        self.node_id, self.workspace_id = f"n_{suffix}", f"w{suffix}"
        self.user_id = asyncio.run(self._place(login, repository))
        minted = scoped_tokens.mint_node_token(self.signer.deployment, self.node_id)
        self.node_token = asyncio.run(minted).token

    async def _place(self, login: str, repository: str) -> str:
        db = self.signer.env.DATABASE
        user = await db.prepare("SELECT id FROM users WHERE login = ?").bind(login).first()
        assert user is not None, f"{login} has not signed in to this edge"
        await (
            db.prepare(
                "INSERT INTO nodes (id, user_id, name, provider, status) "
                "VALUES (?, ?, 'n', 'local', 'running')"
            )
            .bind(self.node_id, user["id"])
            .run()
        )
        await (
            db.prepare(
                "INSERT INTO workspaces (id, user_id, node_id, name, repository, status) "
                "VALUES (?, ?, ?, 'w', ?, 'running')"
            )
            .bind(self.workspace_id, user["id"], self.node_id, repository)
            .run()
        )
        return user["id"]

    def close(self) -> None:
        self.signer.close()
