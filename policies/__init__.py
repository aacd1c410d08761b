"""The one guard every tool call passes.

Argument validation and error envelopes today; policy, approvals and audit plug in here.
"""
