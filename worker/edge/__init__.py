"""The edge: every request and cron event enters here and is routed by host."""
