"""Ids of users, nodes, workspaces, credentials and API tokens: a short prefix that says what
the id names, then 128 random bits as lowercase hex (32 characters).

Lowercase hex because ids go into host names (`ws-{id}.{domain}`, `vm-{id}.{domain}`) and
the agent's directory and label names. Rows made before held 48 (workspaces) or 64 bits;
validators accept both lengths, and only new ids are long.
"""

import secrets

ID_RANDOM_BYTES = 16  # 128 bits: no guessing, and a collision is never a concern
ID_HEX_CHARS = 2 * ID_RANDOM_BYTES


def new_id(prefix: str) -> str:
    """e.g. new_id("n") → "n3f9c…" (the prefix, then 32 hex digits)."""
    return prefix + secrets.token_hex(ID_RANDOM_BYTES)
