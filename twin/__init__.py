"""The CPython twin of the Cloudflare Workers runtime (never bundled for Cloudflare).

One module per binding or runtime API; each mirrors the observable semantics of
`workers-runtime-sdk` 1.9.x so the same worker code runs here and on Cloudflare.
"""
