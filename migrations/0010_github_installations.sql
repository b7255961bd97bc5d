-- The GitHub App's installations each user has proved are theirs (the setup callback checks
-- the id against GitHub's /user/installations before writing it). One installation (an
-- organisation's) may belong to several users: each proves it for themselves.
CREATE TABLE github_installations (
    user_id TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    installation_id INTEGER NOT NULL,
    account_login TEXT NOT NULL,
    account_type TEXT NOT NULL,
    created_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
    PRIMARY KEY (user_id, installation_id)
);

-- The user's GitHub token from their last sign-in, sealed (AES-256-GCM, owner and kind in
-- the associated data, as credentials are): the setup callback asks GitHub with it which
-- installations the user may access. Kept only while the GitHub App is configured.
CREATE TABLE github_user_tokens (
    user_id TEXT PRIMARY KEY REFERENCES users(id) ON DELETE CASCADE,
    nonce BLOB NOT NULL,
    ciphertext BLOB NOT NULL,
    updated_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))
);
