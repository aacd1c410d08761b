"""Whether the installed llama.cpp runs on this CPU: ``python -m simlab.ollama.cpu`` (``make`` runs it).

``make`` builds llama-cpp-python for the CPU it runs on (``-march=native``: prompt evaluation 76-83 tokens/s
on two cores against 51-55 for a portable AVX2 build), without AMX: a native build on a virtual machine
whose CPU lists AMX but does not enable it died with SIGILL in AMX tile code (``tilezero``). pip caches
the wheel by its source alone, so a wheel built on one machine is handed to the next one (a copied home
directory, a virtual machine moved to another host). This check compares the extensions the runtime
was built with (``llama_print_system_info``) with the CPU's flags in ``/proc/cpuinfo`` and exits 1 when
the runtime uses one the CPU lacks, or AMX; ``make`` then builds it again without pip's cache.
"""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

__all__ = ["cpu_flags", "unsupported"]

# llama.cpp's names for the x86 extensions it reports, and the kernel's names for them in /proc/cpuinfo.
FLAGS = {
    "SSE3": "pni",
    "SSSE3": "ssse3",
    "AVX": "avx",
    "AVX_VNNI": "avx_vnni",
    "AVX2": "avx2",
    "F16C": "f16c",
    "FMA": "fma",
    "BMI2": "bmi2",
    "AVX512": "avx512f",
    "AVX512_VBMI": "avx512vbmi",
    "AVX512_VNNI": "avx512_vnni",
    "AVX512_BF16": "avx512_bf16",
}
# Built out by the Makefile whatever the CPU lists (see the module's docstring).
NEVER = ("AMX_INT8", "AMX_TILE", "AMX_BF16")


def cpu_flags(cpuinfo: str) -> set[str] | None:
    """The x86 flags of ``/proc/cpuinfo``'s text (None: no ``flags`` line, another architecture)."""
    found = re.search(r"^flags\s*:(.*)$", cpuinfo, re.M)
    return set(found.group(1).split()) if found else None


def unsupported(system_info: str, flags: set[str]) -> list[str]:
    """The extensions ``system_info`` (llama.cpp's) says the build uses that ``flags`` lack, and AMX."""
    used = set(re.findall(r"\b([A-Z0-9_]+) = 1\b", system_info))
    missing = [name for name, flag in FLAGS.items() if name in used and flag not in flags]
    return missing + [name for name in NEVER if name in used]


def main(argv: list[str] | None = None) -> int:
    """Exit 0 when the installed llama-cpp-python runs on this CPU (or it cannot be told), 1 when not."""
    parser = argparse.ArgumentParser(prog="python -m simlab.ollama.cpu", description=__doc__.splitlines()[0])
    parser.parse_args(argv)
    cpuinfo = Path("/proc/cpuinfo")
    flags = cpu_flags(cpuinfo.read_text(errors="replace")) if cpuinfo.exists() else None
    if flags is None:
        return 0  # not Linux on x86: the Makefile's x86 options were not used either
    import llama_cpp

    info = llama_cpp.llama_print_system_info().decode(errors="replace")
    bad = unsupported(info, flags)
    if bad:
        sys.stderr.write(f"llama-cpp-python was built for another CPU (uses {', '.join(bad)}, which this one lacks "
                         "or which the build leaves out)\n")  # fmt: skip
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
