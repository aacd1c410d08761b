"""A node's PCI devices as ``GET /nodes/{node}/hardware/pci`` lists them (pve-manager's ``pci_scan``).

Every node has an NVMe controller, a 2.5 GbE card and a USB controller; the GPU node also has the NVIDIA RTX
A4000 (and its audio function) that is passed through to a VM. Classes are PCI class codes as lspci prints
them (``0x030000`` a VGA controller); by default the API leaves out memory controllers (05), bridges (06)
and processors (0b), and ``verbose=0`` drops the names.
"""

from __future__ import annotations

from typing import Any

__all__ = ["GPU", "pci_devices"]

_BASE: list[dict[str, Any]] = [
    {"id": "0000:00:00.0", "class": "0x060000", "vendor": "0x1022", "device": "0x14e8",
     "vendor_name": "Advanced Micro Devices, Inc. [AMD]", "device_name": "Root Complex", "iommugroup": 0},
    {"id": "0000:02:00.0", "class": "0x010802", "vendor": "0x144d", "device": "0xa80a",
     "vendor_name": "Samsung Electronics Co Ltd", "device_name": "NVMe SSD Controller PM9A1/PM9A3/980PRO",
     "subsystem_vendor": "0x144d", "subsystem_device": "0xa801", "iommugroup": 12},
    {"id": "0000:03:00.0", "class": "0x020000", "vendor": "0x8086", "device": "0x125c",
     "vendor_name": "Intel Corporation", "device_name": "Ethernet Controller I226-V",
     "subsystem_vendor": "0x8086", "subsystem_device": "0x0000", "iommugroup": 13},
    {"id": "0000:05:00.3", "class": "0x0c0330", "vendor": "0x1022", "device": "0x15b6",
     "vendor_name": "Advanced Micro Devices, Inc. [AMD]", "device_name": "Rembrandt USB4 XHCI controller",
     "iommugroup": 15},
]  # fmt: skip

# The lab's one GPU (lab-facts: node07's NVIDIA RTX A4000) and the HDMI audio function on the same card.
GPU: list[dict[str, Any]] = [
    {"id": "0000:01:00.0", "class": "0x030000", "vendor": "0x10de", "device": "0x24b0",
     "vendor_name": "NVIDIA Corporation", "device_name": "GA104GL [RTX A4000]", "subsystem_vendor": "0x10de",
     "subsystem_device": "0x14ad", "subsystem_vendor_name": "NVIDIA Corporation", "iommugroup": 11, "mdev": False},
    {"id": "0000:01:00.1", "class": "0x040300", "vendor": "0x10de", "device": "0x228b",
     "vendor_name": "NVIDIA Corporation", "device_name": "GA104 High Definition Audio Controller",
     "subsystem_vendor": "0x10de", "subsystem_device": "0x14ad", "iommugroup": 11},
]  # fmt: skip


def pci_devices(node: dict[str, Any], *, blacklist: str = "05;06;0b", verbose: bool = True) -> list[dict[str, Any]]:
    """The node's devices as the API returns them, filtered by class prefix like ``pci-class-blacklist``."""
    devices = [*_BASE, *(GPU if node.get("gpu") else [])]
    prefixes = tuple(f"0x{c.strip()}" for c in blacklist.replace(",", ";").split(";") if c.strip())
    out = []
    for dev in sorted(devices, key=lambda d: d["id"]):
        if prefixes and dev["class"].startswith(prefixes):
            continue
        row = dict(dev)
        if not verbose:
            for key in ("vendor_name", "device_name", "subsystem_vendor_name", "subsystem_device_name"):
                row.pop(key, None)
        out.append(row)
    return out
