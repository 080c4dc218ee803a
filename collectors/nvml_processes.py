"""Processes holding GPU memory: NVML's compute and graphics lists, merged, with names from /proc.

NVML reports host PIDs. Inside a container without the host PID namespace (``hostPID``, or
``shareProcessNamespace`` for the pod's own processes) ``/proc/<pid>`` is absent (name NULL) or, by
coincidence, another process; the name is a convenience, the PID and memory are NVML's.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from .nvml_fields import GpuLost, instance_id

PROCESS_COLUMNS: tuple[str, ...] = (
    "Timestamp",
    "Hostname",
    "GpuIndex",
    "GpuUuid",
    "MigUuid",
    "GpuInstanceId",
    "ComputeInstanceId",
    "Pid",
    "ProcessName",
    "ProcessType",
    "UsedMemoryBytes",
)
_COMM_MAX = 15  # the kernel truncates /proc/<pid>/comm to TASK_COMM_LEN - 1 characters


def process_name(pid: int, proc_root: str = "/proc") -> str | None:
    """``comm``, completed from ``cmdline`` when the kernel truncated it; None when unreadable."""
    base = Path(proc_root) / str(pid)
    try:
        comm = (base / "comm").read_text(encoding="utf-8", errors="replace").strip()
    except OSError:
        return None
    if len(comm) == _COMM_MAX:
        try:
            argv0 = (base / "cmdline").read_bytes().split(b"\0", 1)[0].decode("utf-8", "replace")
        except OSError:
            argv0 = ""
        full = os.path.basename(argv0.split(" ", 1)[0]) if argv0 else ""
        if full.startswith(comm):
            return full
    return comm or None


def list_processes(nvml: Any, handle: Any) -> dict[tuple[int, int | None, int | None], dict[str, Any]]:
    """{(pid, gpu instance, compute instance): partial row} from both NVML process lists.

    A list NVML cannot read (NotSupported, NoPermission) is skipped; a process in both lists is
    ``compute+graphics`` with the larger of its two memory readings (they describe one allocation).
    """
    lost = getattr(nvml, "NVMLError_GpuIsLost", ())
    merged: dict[tuple[int, int | None, int | None], dict[str, Any]] = {}
    for kind, call in (
        ("compute", nvml.nvmlDeviceGetComputeRunningProcesses),
        ("graphics", nvml.nvmlDeviceGetGraphicsRunningProcesses),
    ):
        try:
            processes = call(handle)
        except Exception as err:
            if lost and isinstance(err, lost):
                raise GpuLost(str(err)) from err
            continue
        for proc in processes:
            gi = instance_id(getattr(proc, "gpuInstanceId", None))
            ci = instance_id(getattr(proc, "computeInstanceId", None))
            key = (int(proc.pid), gi, ci)
            memory = _memory(nvml, getattr(proc, "usedGpuMemory", None))
            entry = merged.get(key)
            if entry is None:
                merged[key] = {
                    "ProcessType": kind,
                    "UsedMemoryBytes": memory,
                    "GpuInstanceId": gi,
                    "ComputeInstanceId": ci,
                }
                continue
            entry["ProcessType"] = "compute+graphics"
            if memory is not None:
                previous = entry["UsedMemoryBytes"]
                entry["UsedMemoryBytes"] = memory if previous is None else max(previous, memory)
    return merged


def _memory(nvml: Any, value: Any) -> int | None:
    """pynvml already turns NVML_VALUE_NOT_AVAILABLE into None; a raw sentinel is handled the same way."""
    if value is None:
        return None
    sentinel = getattr(getattr(nvml, "NVML_VALUE_NOT_AVAILABLE_ulonglong", None), "value", 2**64 - 1)
    value = int(value)
    return None if value == sentinel else value
