"""SAM's Durable Object classes (per-project chat, per-node lifecycle, task runner).

Each class is re-exported by `worker/entry.py` and bound in wrangler.toml.
"""
