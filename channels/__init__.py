"""How people reach LabOps: the CLI, the OpenAI-compatible API and the Slack-style bot."""
