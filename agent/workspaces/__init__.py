"""Workspaces on the node: repositories cloned and brought up as devcontainers (or plain
directories on the host backend), with their boot log."""
