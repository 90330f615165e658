"""Shared pieces of the benchmarks: machine description, timing, atomic JSON output."""
from __future__ import annotations

import json
import os
import platform
import time
from pathlib import Path

import numpy as np

from core.io.files import write_text

RESULTS_DIR = Path(__file__).resolve().parent / "results"


def machine() -> dict:
    cpu = platform.processor() or ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {"cpu": cpu, "cores": os.cpu_count(), "python": platform.python_version(),
            "numpy": np.__version__, "platform": platform.platform()}


def time_calls(fn, args_list, repeat: int = 1) -> np.ndarray:
    """Wall time in milliseconds of fn(*args) for every args in args_list."""
    out = []
    for _ in range(repeat):
        for args in args_list:
            t0 = time.perf_counter()
            fn(*args)
            out.append((time.perf_counter() - t0) * 1000.0)
    return np.array(out)


def summary(ms: np.ndarray) -> dict:
    return {"median_ms": float(np.median(ms)), "p95_ms": float(np.percentile(ms, 95)), "n": int(len(ms))}


def write_json(name: str, payload: dict) -> Path:
    path = RESULTS_DIR / name
    write_text(path, json.dumps(payload, indent=2))
    return path
