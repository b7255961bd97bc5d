"""The developer's tools: the `sam` command, which joins the twin and the Worker into the local
edge (`sam dev`), the local node launcher behind the `local` provider, and artifact upload.
"""
