"""What bmsdk reads of the machine: the ISA flags that pick int8 kernels, and onnxruntime's 7-bit weights where x86
int8 products saturate (no VNNI)."""

from __future__ import annotations

import pytest

from bmsdk import host


@pytest.mark.parametrize(
    ("machine", "flags", "saturates"),
    [
        ("x86_64", ("avx2", "fma"), True),  # AVX2 only: vpmaddubsw's int16 sums
        ("x86_64", ("avx2", "avx512f", "avx512_vnni"), False),
        ("x86_64", ("avx2", "avx_vnni"), False),  # Alder Lake and later
        ("x86_64", (), True),  # flags unknown: the safe side
        ("aarch64", ("asimd", "asimddp"), False),
    ],
)
def test_int8_products_saturate_on_x86_without_vnni(monkeypatch, machine, flags, saturates):
    monkeypatch.setattr(host.platform, "machine", lambda: machine)
    monkeypatch.setattr(host, "cpuinfo", lambda: ("some cpu", flags))
    assert host.int8_products_saturate() is saturates


def test_cpuinfo_names_only_the_flags_that_matter():
    model, flags = host.cpuinfo()
    assert model and set(flags) <= set(host.ISA_FLAGS + host.ISA_FLAGS_ARM)
