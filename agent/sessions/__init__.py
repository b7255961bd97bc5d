"""The ACP gateway: agent sessions in workspace containers (manager.py), each an ACP adapter
(adapter.py, started through container.py from the read-only tools mount, tools.py) driven
as its ACP client (session.py, permissions.py); docs/protocols/agent-sessions.md."""
