"""What every benchmark prints about the machine it ran on (imported by the bench scripts)."""

from __future__ import annotations

from pathlib import Path


def cpu_model() -> str:
    """The CPU's model name and its widest vector extension, for the record of every run."""
    info = Path("/proc/cpuinfo").read_text() if Path("/proc/cpuinfo").exists() else ""
    name = next((ln.split(":", 1)[1].strip() for ln in info.splitlines() if ln.startswith("model name")),
                "unknown CPU")
    flags = next((ln.split(":", 1)[1].split() for ln in info.splitlines() if ln.startswith("flags")), [])
    isa = "AVX-512" if "avx512f" in flags else "AVX2" if "avx2" in flags else "no AVX2"
    extra = [f for f in ("avx512_bf16", "amx_bf16") if f in flags]
    return f"{name} ({isa}{', ' + ', '.join(extra) if extra else ''})"
