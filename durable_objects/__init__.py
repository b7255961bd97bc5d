"""SAM's Durable Object classes, thin over the domain services in worker/.

    NodeLifecycle    node_lifecycle.py: one per node, its warm-pool state (claims up to
                     capacity, the warm window, the teardown alarm)

Each class is re-exported by `worker/entry.py` and bound in wrangler.toml.
"""
