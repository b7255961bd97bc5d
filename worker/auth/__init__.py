"""Who is calling: GitHub sign-in, sessions, users, API tokens, JWTs and their keys, and the
sealed credentials users store."""
