"""The benchmark's peak figures: a clock measurement far from the kernel's figure is not trusted, and AMX's
peak comes from its tile rate."""

from __future__ import annotations

import pytest

from bench import common, ingest_throughput


@pytest.fixture
def kernel_says_2_6_ghz(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(common, "kernel_max_clock_ghz", lambda: None)
    monkeypatch.setattr(common, "nominal_clock_ghz", lambda: (2.6, "`cpu MHz` in /proc/cpuinfo"))


def test_a_turbo_clock_is_measured(kernel_says_2_6_ghz: None) -> None:
    assert common.best_clock(3.68) == (3.68, "measured (dependent 64-bit IMULs, 3 cycles each)")


def test_an_impossible_measurement_gives_way_to_the_kernel(kernel_says_2_6_ghz: None) -> None:
    ghz, source = common.best_clock(20.33)  # what a chain of `add $1` read on a Sapphire Rapids Xeon
    assert ghz == 2.6
    assert "20.33 GHz" in source and "not used" in source


def test_without_a_measurement_the_kernel_speaks(kernel_says_2_6_ghz: None) -> None:
    assert common.best_clock(None) == (2.6, "`cpu MHz` in /proc/cpuinfo")


def test_amx_peak_is_1024_flop_per_cycle_and_core() -> None:
    result = {"clock_ghz": 2.0, "peak": {"fp32": 64, "bf16": 128, "amx_bf16": 1024}}
    assert ingest_throughput.peaks(result, 2) == {"float32": 256.0, "bfloat16": 512.0, "AMX bfloat16": 4096.0}
    no_amx = {"clock_ghz": 2.0, "peak": {"fp32": 32, "bf16": 64, "amx_bf16": None}}
    assert "AMX bfloat16" not in ingest_throughput.peaks(no_amx, 2)


def test_this_cpu_amx_flag_matches_its_tile_peak() -> None:
    units = common.flops_per_cycle()
    assert (units["amx_bf16"] == 1024) == units["amx"]


def _cpuinfo(vendor: str, family: int, model: int, flags: str) -> str:
    return (
        f"vendor_id\t: {vendor}\ncpu family\t: {family}\nmodel\t\t: {model}\nmodel name\t: AMD EPYC\n"
        f"flags\t\t: fpu sse2 avx2 {flags}\n"
    )


@pytest.mark.parametrize(
    ("vendor", "family", "fp32"),
    [("AuthenticAMD", 25, 32), ("AuthenticAMD", 26, 64), ("GenuineIntel", 6, 64)],
    ids=["zen4-splits-512-bit-fma", "zen5-two-512-bit-fma-pipes", "intel-server-two-fma-units"],
)
def test_512_bit_fma_units_follow_the_core(
    monkeypatch: pytest.MonkeyPatch, vendor: str, family: int, fp32: int
) -> None:
    monkeypatch.setattr(common, "_cpuinfo", lambda: _cpuinfo(vendor, family, 2, "avx512f avx512_bf16"))
    units = common.flops_per_cycle()
    assert (units["fp32"], units["bf16"]) == (fp32, 2 * fp32)


def test_the_cpu_is_named_with_its_family_and_model(monkeypatch: pytest.MonkeyPatch) -> None:
    """Zen 4 and Zen 5 guests both call themselves "AMD EPYC"; their figures must not replace each other."""
    monkeypatch.setattr(common, "_cpuinfo", lambda: _cpuinfo("AuthenticAMD", 26, 2, "avx512f"))
    assert common.cpu_model() == "AMD EPYC (family 26, model 2)"
    monkeypatch.setattr(common, "_cpuinfo", lambda: _cpuinfo("AuthenticAMD", 25, 17, "avx512f"))
    assert common.cpu_model() == "AMD EPYC (family 25, model 17)"
