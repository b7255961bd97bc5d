"""Who may sign in with GitHub: the logins and organisations the deployment names.

    SAM_ALLOWED_GITHUB_USERS = "alice, bob"      these accounts
    SAM_ALLOWED_GITHUB_ORGS  = "acme"            any active member of these organisations

With neither set, nobody signs in with GitHub: an open deployment would hand every GitHub
account a place to run code on the operator's machines (and make the first comer admin).
Organisation membership is read with the user's own token (`read:org` is asked for only
when organisations are named) from `GET /user/memberships/orgs/{org}`, which also sees
private memberships; a pending invitation does not count.
"""

from worker.auth import github
from worker.auth.users import GitHubProfile
from worker.config import Config
from worker.errors import Forbidden


class SignInNotAllowed(Forbidden):
    def __init__(self, message: str) -> None:
        super().__init__("sign_in_not_allowed", message)


async def check_allowed(config: Config, profile: GitHubProfile, access_token: str) -> None:
    """Return if `profile` may sign in; raise SignInNotAllowed saying why and what to do."""
    users, orgs = config.allowed_github_users, config.allowed_github_orgs
    if not users and not orgs:
        raise SignInNotAllowed(
            "This deployment does not name who may sign in yet. Its operator sets "
            "SAM_ALLOWED_GITHUB_USERS (GitHub logins) and/or SAM_ALLOWED_GITHUB_ORGS "
            "(organisations) in wrangler.toml's [vars] and deploys again."
        )
    if profile.login.lower() in users:
        return
    for org in sorted(orgs):
        if await github.is_active_member(config, access_token, org):
            return
    where = " or a member of " + ", ".join(sorted(orgs)) if orgs else ""
    raise SignInNotAllowed(
        f"The GitHub account {profile.login!r} may not sign in to this deployment: it is "
        f"not on its list of users{where}. Ask the deployment's operator to add you, or "
        "sign in with another GitHub account."
    )
