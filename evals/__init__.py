"""Scripted evaluation runs of the agent: scenarios, a fresh lab per case, deterministic checks, reports."""
