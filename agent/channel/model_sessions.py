"""Which agent session may reach the model, with whose key: the model proxy's one source.

The session manager adds a session once the control plane handed it the owner's key
(wire.callbacks.AgentCredential) and removes it when the session or its workspace ends.
The key lives here, in the agent's memory only: never on disk, in a log line or in the
adapter's environment.
"""

from dataclasses import dataclass

from wire.callbacks import AgentCredential


@dataclass(frozen=True)
class ModelSession:
    session_id: str
    workspace_id: str
    credential: AgentCredential


class ModelSessions:
    def __init__(self) -> None:
        self._sessions: dict[str, ModelSession] = {}

    def add(self, session_id: str, workspace_id: str, credential: AgentCredential) -> None:
        self._sessions[session_id] = ModelSession(session_id, workspace_id, credential)

    def get(self, session_id: str, workspace_id: str) -> ModelSession | None:
        """The session, if it is running in that workspace (another's is as unknown)."""
        session = self._sessions.get(session_id)
        return session if session is not None and session.workspace_id == workspace_id else None

    def remove(self, session_id: str) -> None:
        self._sessions.pop(session_id, None)

    def remove_workspace(self, workspace_id: str) -> None:
        for session in list(self._sessions.values()):
            if session.workspace_id == workspace_id:
                del self._sessions[session.session_id]
