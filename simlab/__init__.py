"""The embedded lab: simulators of the PVE, PBS and Kubernetes APIs, PostgreSQL with DESI data, a Ray head.

``simlab`` is a separate program from LabOps itself: it shares no code with ``core``, ``tools``,
``policies`` or ``agent``, so a mistake in a client is not mirrored by the simulator it is tested against.
"""
