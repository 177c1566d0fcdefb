"""Facts about the machine a benchmark runs on, and the process's memory."""

from __future__ import annotations

import ctypes
import datetime
import gc
import os
import platform
import re
import sys
import threading
from pathlib import Path

import jax
import numpy as np

from .._version import __version__

# ------------------------------------------------------------------------------------------------
# Measurement
# ------------------------------------------------------------------------------------------------


def _rss() -> int:
    """Resident set size of this process in bytes (Linux); else the peak so far (getrusage)."""
    try:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        import resource

        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        return peak if sys.platform == "darwin" else peak * 1024


def _trim() -> None:
    gc.collect()
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):
        pass


class PeakRSS:
    """Peak growth of the process's RSS inside a ``with`` block, sampled by a thread every ``interval`` s."""

    def __init__(self, interval: float = 0.002):
        self.interval = interval

    def __enter__(self):
        _trim()
        self.start = self.peak = _rss()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()
        return self

    def _sample(self):
        while not self._stop.wait(self.interval):
            self.peak = max(self.peak, _rss())

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, _rss())

    @property
    def delta_mb(self) -> float:
        return (self.peak - self.start) / 2**20


def cpu_model() -> str:
    """The CPU's model name from ``/proc/cpuinfo`` (else what ``platform`` says)."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def machine(backends: list[str]) -> dict:
    """The ``machine`` block of a result (see benchmarks/README.md, "Result schema")."""
    import jaxlib

    devices = {}
    for b in backends:
        ds = jax.devices(b)
        devices[b] = {"kind": ds[0].device_kind, "count": len(ds), "kinds": sorted({d.device_kind for d in ds})}
    return {
        "cpu": cpu_model(),
        "cores": os.cpu_count(),
        "memory_gb": round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30, 1)
        if hasattr(os, "sysconf")
        else None,
        "platform": platform.platform(),
        "python": platform.python_version(),
        "jax": jax.__version__,
        "jaxlib": str(getattr(jaxlib, "__version__", "unknown")),
        "numpy": np.__version__,
        "lrsweep": __version__,
        "backends": backends,
        "devices": devices,
        "date": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
    }


def _slug(text: str) -> str:
    text = re.sub(r"\(r\)|\(tm\)|\bcpu\b|processor|\d+-core|@.*$", "", text.lower())
    return re.sub(r"[^a-z0-9]+", "-", text).strip("-") or "machine"


def default_name(m: dict) -> str:
    """``<cpu>-<cores>c_<device>``: the device is ``cpu`` or the accelerator's kind and count
    (``amd-epyc-7b13-2c_cpu``, ``amd-epyc-7b13-2c_nvidia-h200x1``), so that two accelerators behind
    one CPU model never share a name."""
    accel = [b for b in m["backends"] if b != "cpu"]
    dev = (
        "cpu" if not accel else "_".join(f"{_slug(m['devices'][b]['kind'])}x{m['devices'][b]['count']}" for b in accel)
    )
    return f"{_slug(m['cpu'])}-{m['cores']}c_{dev}"


def jax_backends() -> list[str]:
    """The JAX platforms with devices here, CPU first."""
    found = []
    for name in ("cpu", "gpu", "tpu"):
        try:
            if jax.devices(name):
                found.append(name)
        except RuntimeError:
            pass
    return found
