"""The Proxmox VE API simulator (``/api2/json``)."""

from simlab.pve.app import PveApp

__all__ = ["PveApp"]
