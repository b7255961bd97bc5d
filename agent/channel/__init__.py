"""SAM's own channel into a workspace, and what is served on it (the model proxy)."""
