"""Workspaces: devcontainers on nodes, placed, handed to the node's agent and swept."""
