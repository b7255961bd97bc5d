"""The CPython twin of the Cloudflare Workers runtime: what `sam dev` and the tests run on.

One module per binding or runtime API; each mirrors the observable semantics of
`workers-runtime-sdk` 1.9.x so the same worker code runs here and on Cloudflare. Like
miniflare, it knows nothing of the Worker it runs: it imports nothing of ours, and the
program that starts it (`devtools/`) adds whatever else the Worker expects to find.
"""
