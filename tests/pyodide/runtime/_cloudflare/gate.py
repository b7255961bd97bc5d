"""Close the entropy gate before the main module's import; open it for the first request."""

import os

from _cloudflare import import_patch_manager, stdlib_patches
from _cloudflare.allow_entropy import allowance_address


def before_top_level() -> int:
    """Install the patches and return the allowance's address for the Node host."""
    os.urandom = stdlib_patches.urandom_refusing_entropy
    import_patch_manager.install()
    return allowance_address()


def before_first_request() -> None:
    stdlib_patches.restore_urandom()
    import_patch_manager.remove()
    for handler in import_patch_manager.BEFORE_FIRST_REQUEST:
        handler()
