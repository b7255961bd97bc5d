"""Projects: a repository and the defaults its chats start with; their chats' index."""
