"""The GitHub App: its key and JWT, installation tokens, installations and repositories."""
