"""Peak memory of the running process, for the benchmarks (each system or configuration runs in a
process of its own, so this is its own peak)."""

from __future__ import annotations

import resource
import sys


def peak_rss_mb() -> float:
    """Peak resident memory of this process so far, in MiB: Linux's VmHWM, which starts afresh at
    exec, else ``ru_maxrss`` (which on Linux keeps the parent's peak across fork and exec)."""
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    scale = 1 if sys.platform == "darwin" else 1024  # macOS reports bytes, Linux KiB
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * scale / 2**20
