"""Benchmarks: scripts run by hand that print numbers (never timed assertions in tests)."""
