"""The guarded tools as a Model Context Protocol server: ``labops mcp`` (stdio) and ``/mcp`` on ``labops serve``.

Every MCP tool is a registered tool (its schema, title, description and risk from its declaration); every call
goes through the guard as the channel's user, so policy, quotas, approvals and the audit log apply to a
lab member's own assistant exactly as to LabOps's.
"""
