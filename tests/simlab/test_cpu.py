"""The install's check that the built llama.cpp runs on this CPU (simlab.ollama.cpu)."""

from __future__ import annotations

from simlab.ollama.cpu import cpu_flags, unsupported

# llama_print_system_info() of a native build on an AVX-512 machine, and of one built for AVX2 only.
AVX512_BUILD = "CPU : SSE3 = 1 | SSSE3 = 1 | AVX = 1 | AVX2 = 1 | F16C = 1 | FMA = 1 | AVX512 = 1 | AVX512_VNNI = 1 |"
AVX2_BUILD = "CPU : SSE3 = 1 | SSSE3 = 1 | AVX = 1 | AVX2 = 1 | F16C = 1 | FMA = 1 | BMI2 = 1 | AVX512 = 0 |"
AVX2_CPU = "processor\t: 0\nflags\t\t: fpu pni ssse3 fma avx f16c avx2 bmi2\nbugs\t\t: spectre_v1\n"


def test_a_build_for_a_bigger_cpu_is_caught() -> None:
    flags = cpu_flags(AVX2_CPU)
    assert flags is not None and "avx2" in flags
    assert unsupported(AVX512_BUILD, flags) == ["AVX512", "AVX512_VNNI"]
    assert unsupported(AVX2_BUILD, flags) == []  # "= 0" is not used


def test_amx_is_never_accepted_even_where_the_cpu_lists_it() -> None:
    # A virtual machine's CPU listed amx_int8 and the AMX code still died with SIGILL.
    flags = cpu_flags(AVX2_CPU.replace("bmi2", "bmi2 amx_int8 amx_tile"))
    assert flags is not None
    assert unsupported(AVX2_BUILD + " AMX_INT8 = 1 |", flags) == ["AMX_INT8"]


def test_another_architecture_is_not_judged() -> None:
    assert cpu_flags("processor\t: 0\nFeatures\t: fp asimd evtstrm aes\n") is None
