"""The Proxmox Backup Server API simulator (``/api2/json``)."""

from simlab.pbs.app import PbsApp

__all__ = ["PbsApp"]
