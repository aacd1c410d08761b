"""The ``labops`` command."""
