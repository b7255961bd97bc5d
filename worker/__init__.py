"""The Cloudflare Worker: exactly what is uploaded to Cloudflare (with `durable_objects/` and
`wire/`).

    entry.py      the entrypoint workerd (or the twin) calls: fetch, scheduled
    platform.py   the one module that knows which runtime it is on
    edge/         the host router, health, cron, the ws-{id} proxy
    api/          the FastAPI app: middleware, dependencies, rate limits, routes/
    auth/         sign-in, sessions, users, API tokens, scoped JWTs and keys, crypto, credentials
    nodes/        nodes, the warm pool, sweeps, bootstrap, DNS, providers/ (local, hetzner/)
    workspaces/   workspaces, their placement on nodes, the agent client, boot logs, sweeps
"""
