-- The control plane's ES256 signing keys (worker/keys.py). The private key is sealed with
-- AES-256-GCM (worker/crypto.py, owner "system", kind "signing_key:<kid>"); the public half
-- is kept as the JWK that /.well-known/jwks.json publishes. A key signs while
-- retired_at IS NULL and stays published until every token it signed has expired.

CREATE TABLE signing_keys (
    kid TEXT PRIMARY KEY,
    private_key_nonce BLOB NOT NULL,
    private_key_ciphertext BLOB NOT NULL,
    public_jwk TEXT NOT NULL,
    created_at TEXT NOT NULL,
    retired_at TEXT
);
CREATE INDEX signing_keys_by_retired ON signing_keys (retired_at);
