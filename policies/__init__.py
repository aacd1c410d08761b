"""The one guard every tool call passes (argument validation, error envelopes; policy, approvals and audit plug in here)."""
