-- One row per node bootstrap token ever exchanged (worker/bootstrap.py). The token itself
-- lives in KV for 15 minutes; KV is eventually consistent across Cloudflare's locations,
-- so single use is decided here: the first INSERT of a token's hash wins, a replay finds
-- the row. Only the SHA-256 of the token is kept.
CREATE TABLE bootstrap_redemptions (
    token_hash TEXT PRIMARY KEY,
    node_id TEXT NOT NULL,
    redeemed_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))
);
