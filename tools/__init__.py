"""Guarded tools: VMs (Proxmox VE), Ray jobs, DESI queries, backups.

Each toolset module exports one explicit ``TOOLS`` list; :mod:`tools.registry` collects them.
"""
