"""Tasks: a message that ends in a pull request (issue 12; docs/protocols/project-chat.md)."""
