"""Local-path repositories (the `local` provider), confined per user.

The operator, the deployment's admin (the first user to sign in; under `sam dev` the first
development sign-in), may name any git repository on the machine. Every other user only
one under `config.local_repository_roots` (SAM_LOCAL_REPOSITORY_ROOTS, `{login}` standing
for the user's login), and none when it is unset.

The Worker has no filesystem, so the check runs on the machine itself, in the local node
launcher (devtools/local_repositories.py, through the LOCAL_NODES binding): symbolic links
are resolved before the check, a `.git` file or object alternates leading out of the
roots are refused too, and the resolved path is what gets stored and cloned.

Every refusal is the same sentence whatever the reason (outside the roots, missing, not a
git repository), so nobody learns which host paths exist.
"""

from worker.auth.users import User
from worker.config import LOCAL_ROOTS_VAR, LOGIN_PLACEHOLDER
from worker.deployment import Deployment
from worker.nodes.providers.local import LocalProvider
from worker.workspaces.spec import InvalidWorkspaceSpec

MAX_PATH_SHOWN_CHARS = 200


def roots_for(deployment: Deployment, user: User) -> list[str] | None:
    """The directories `user` may name repositories under; None: anywhere (the operator)."""
    if user.is_admin:
        return None
    roots = deployment.config.local_repository_roots
    return [root.replace(LOGIN_PLACEHOLDER, user.login) for root in roots]


async def confined(deployment: Deployment, user: User, path: str) -> str:
    """`path` resolved, if it is a git repository `user` may clone; else the one refusal."""
    roots = roots_for(deployment, user)
    resolved = await LocalProvider().check_repository(deployment, path, roots)
    if resolved is None:
        raise refusal(path, roots)
    return resolved


def refusal(path: str, roots: list[str] | None) -> InvalidWorkspaceSpec:
    shown = path[:MAX_PATH_SHOWN_CHARS]
    if roots is None:
        return InvalidWorkspaceSpec("repository", f"{shown} is not a git repository here")
    where = (
        "allowed: under " + ", ".join(roots)
        if roots
        else f"no directory is allowed yet; the operator can allow some with {LOCAL_ROOTS_VAR}"
    )
    return InvalidWorkspaceSpec(
        "repository", f"{shown} is not a git repository you may use on this machine ({where})"
    )
