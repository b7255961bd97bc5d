"""The agent's exceptions: one module, one tree.

    AgentError                      base; `status` and `code` say how the API answers it
    ├── ConfigError                 a bad SAM_* variable (names it); stops the agent at start
    ├── BadRequest          400     malformed JSON, an invalid body or parameter
    ├── Unauthorized        401     no token, bad signature, expired, unknown kid, wrong alg
    ├── Forbidden           403     a valid token for another node, workspace or audience
    ├── NotFound            404     an unknown route or object
    │   └── WorkspaceNotFound       no workspace with that id on this node
    ├── Conflict            409     the request does not fit the current state
    │   ├── WorkspaceExists         a workspace with that id is already on this node
    │   ├── InvalidTransition       a workspace state change the transition table refuses
    │   └── WorkspaceNotRunning     a terminal asked of a workspace that is not running
    ├── PayloadTooLarge     413     a request body over the route's limit
    ├── AuthUnavailable     503     the control plane's JWKS cannot be fetched (no keys yet)
    └── ControlPlaneError   502     a callback to the control plane failed (never reaches a
                                    caller of the reporter: it is logged and retried)

The server's error middleware is the one place that turns these into
`{"error": code, "message": message}`; anything else raised in a handler is logged with
its traceback and answered as a 500 without details.

Other parts of the agent append their classes at the end of this module.
"""

from http import HTTPStatus


class AgentError(Exception):
    status: int = HTTPStatus.INTERNAL_SERVER_ERROR
    code: str = "internal_error"

    def __init__(self, message: str, *, code: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code


class ConfigError(AgentError):
    code = "config_error"

    def __init__(self, variable: str, problem: str) -> None:
        super().__init__(f"{variable}: {problem}")
        self.variable = variable


class BadRequest(AgentError):
    status = HTTPStatus.BAD_REQUEST
    code = "bad_request"


class Unauthorized(AgentError):
    status = HTTPStatus.UNAUTHORIZED
    code = "unauthorized"


class Forbidden(AgentError):
    status = HTTPStatus.FORBIDDEN
    code = "forbidden"


class NotFound(AgentError):
    status = HTTPStatus.NOT_FOUND
    code = "not_found"


class WorkspaceNotFound(NotFound):
    code = "workspace_not_found"


class Conflict(AgentError):
    status = HTTPStatus.CONFLICT
    code = "conflict"


class WorkspaceExists(Conflict):
    code = "workspace_exists"


class InvalidTransition(Conflict):
    code = "invalid_state_transition"


class WorkspaceNotRunning(Conflict):
    code = "workspace_not_running"


class PayloadTooLarge(AgentError):
    status = HTTPStatus.REQUEST_ENTITY_TOO_LARGE
    code = "payload_too_large"


class AuthUnavailable(AgentError):
    status = HTTPStatus.SERVICE_UNAVAILABLE
    code = "auth_unavailable"


class ControlPlaneError(AgentError):
    status = HTTPStatus.BAD_GATEWAY
    code = "control_plane_error"

    def __init__(self, message: str, *, retryable: bool = True) -> None:
        super().__init__(message)
        self.retryable = retryable


# --- Appended by the other parts of the agent (append only) -------------------------------


# --- workspaces (agent/workspaces/: repos.py, containers.py, manager.py) ----------------
#
#   BadRequest
#   └── InvalidWorkspaceSpec        a repository or branch refused before any command runs
#   AgentError
#   └── ProvisioningError   502     a step of bringing a workspace up failed (step, stderr)
#       ├── CloneError              `git clone` failed
#       └── ContainerError          the Docker Engine or the devcontainer CLI failed


class InvalidWorkspaceSpec(BadRequest):
    code = "invalid_workspace_spec"

    def __init__(self, field: str, problem: str) -> None:
        super().__init__(f"{field}: {problem}")
        self.field = field


class ProvisioningError(AgentError):
    """A failed step: `step` names it, `detail` holds the tail of its stderr, `hint` says
    what to do next."""

    status = HTTPStatus.BAD_GATEWAY
    code = "provisioning_failed"

    def __init__(self, message: str, *, step: str, hint: str, detail: str | None = None) -> None:
        super().__init__(message)
        self.step = step
        self.hint = hint
        self.detail = detail


class CloneError(ProvisioningError):
    code = "clone_failed"


class ContainerError(ProvisioningError):
    code = "container_error"


# --- agent sessions (agent/sessions/) -----------------------------------------------------
#
#   NotFound
#   └── AgentSessionNotFound        no agent session with that id in this workspace
#   NotFound
#   └── PermissionRequestNotFound   no open permission request of that id (answered already?)
#   Conflict
#   ├── AgentNeedsContainer         agent sessions run in a container; the host backend has none
#   ├── AgentSessionBusy            a prompt while a turn is running (or its queue is full)
#   ├── AgentSessionEnded           a prompt or cancel for a stopped or crashed session
#   └── AgentSessionIdTaken         a new session's id names another workspace's session
#   AgentError
#   └── AgentStartFailed    502     the adapter did not come up (detail: its stderr tail)


class AgentSessionNotFound(NotFound):
    code = "agent_session_not_found"


class PermissionRequestNotFound(NotFound):
    code = "permission_request_not_found"


class AgentNeedsContainer(Conflict):
    code = "agent_needs_container"


class AgentSessionBusy(Conflict):
    code = "agent_session_busy"


class AgentSessionEnded(Conflict):
    code = "agent_session_ended"


class AgentSessionIdTaken(Conflict):
    code = "agent_session_id_taken"


class AgentStartFailed(AgentError):
    status = HTTPStatus.BAD_GATEWAY
    code = "agent_start_failed"

    def __init__(self, message: str, *, detail: str) -> None:
        super().__init__(message)
        self.detail = detail


# --- the model proxy (agent/channel/model_proxy.py) ---------------------------------------
#
#   Conflict
#   └── AgentCredentialMissing      the workspace's owner stored no Anthropic key


class AgentCredentialMissing(Conflict):
    code = "agent_credential_missing"


# --- git on the checkout (agent/workspaces/git.py) ------------------------------------------
#
#   AgentError
#   ├── GitFailed           502     git itself failed (the remote refused, or unreachable)
#   Conflict
#   ├── PushRejected                the branch on the remote holds commits the checkout lacks
#   └── NoGitToken                  the control plane has no token for the workspace's repo


class GitFailed(AgentError):
    status = HTTPStatus.BAD_GATEWAY
    code = "git_failed"


class PushRejected(Conflict):
    code = "push_rejected"


class NoGitToken(Conflict):
    code = "no_git_token"
