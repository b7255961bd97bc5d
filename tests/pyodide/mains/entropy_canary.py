"""A main module that asks for entropy at top level, which workerd refuses."""

import os

NONCE = os.urandom(16)
