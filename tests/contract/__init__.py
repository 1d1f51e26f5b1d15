"""Contract tests: schemathesis against the served spec."""
