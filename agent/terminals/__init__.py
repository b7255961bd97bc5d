"""Terminals: PTY sessions (host shells or container TTYs) shared over one WebSocket, with a
byte-capped ring for replay."""
