"""Plugins for the whole suite."""

pytest_plugins = ["tests.support.ci_policy", "tests.support.log_scan"]
