"""Loopback servers that speak third parties' real wire formats (GitHub, ...)."""
