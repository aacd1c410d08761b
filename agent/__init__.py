"""The LangGraph agent: retrieves from the lab's documentation, calls the guarded tools, pauses for approvals.

Modules, one concept each: ``models`` (which chat model), ``scripted`` (the test model), ``prompts``,
``toolcalls`` (one parser for every backend), ``normalize`` (argument repair), ``toolselect`` (tool
retrieval), ``intent`` (the intent gate), ``state``, ``graph`` (the nodes), ``checkpoints``, ``runtime``
(the :class:`~agent.runtime.Agent` the channels call).
"""
