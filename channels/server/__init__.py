"""``labops serve``: one HTTP service for OpenWebUI (an OpenAI-compatible API), Slack, health and metrics."""
