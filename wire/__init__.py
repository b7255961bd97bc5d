"""What the Worker and the VM agent must agree on, declared once: the version, the
repository and branch rules, and the wire types of their protocols (the agent's HTTP API,
callbacks, terminals, agent sessions). Pure: the standard
library and pydantic only, nothing else of ours.
"""
