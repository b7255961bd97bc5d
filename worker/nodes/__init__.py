"""Nodes: machines running the agent, their lifecycle, the warm pool and the providers that
make them."""
