"""SAM's Durable Object classes, thin over the domain services in worker/.

    NodeLifecycle    node_lifecycle.py: one per node, its warm-pool state (claims up to
                     capacity, the warm window, the teardown alarm)
    TaskRunner       task_runner.py: one per run, the alarm-driven steps that start a chat's
                     workspace and agent session, then the controls it delivers to it
                     (its tables: run_storage.py)

Each class is re-exported by `worker/entry.py` and bound in wrangler.toml.
"""
