-- Sign-in: local (dev sign-in) users are unique by login among users without a GitHub
-- account, so two concurrent dev sign-ins as the same login get one user.
CREATE UNIQUE INDEX users_local_login ON users (login) WHERE github_id IS NULL;

-- Listing a user's API tokens.
CREATE INDEX api_tokens_by_user ON api_tokens (user_id);
