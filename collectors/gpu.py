"""GPU collector: one NVML snapshot per GPU per tick into ``gpu_samples`` and ``gpu_processes`` rows.

The NVML module is the seam: ``GpuCollector(nvml=pynvml)`` in production (imported lazily, package
``nvidia-ml-py``), a replay of recorded readings in tests. The collector never raises out of
``start``/``collect``/``close``: without a driver it says so once and stays off; an unreadable field is
NULL (never 0) with the reason in ``Unreadable``; a GPU that falls off the bus is reported once.

The sidecar loop calls::

    collector = GpuCollector()
    if collector.start():
        while running:
            rows = collector.collect(datetime.now(timezone.utc))  # {"gpu_samples": [...], "gpu_processes": [...]}
            ...  # rows_to_batch(table, rows[table]) for each non-empty table
            sleep(DEFAULT_INTERVAL_SECONDS)
    collector.close()
"""

from __future__ import annotations

import importlib
import logging
import socket
import time
from datetime import datetime
from typing import Any

from .nvml_fields import DeviceReader, GpuLost, empty_sample, error_name, text
from .nvml_processes import list_processes, process_name

__all__ = ["DEFAULT_INTERVAL_SECONDS", "GpuCollector"]

DEFAULT_INTERVAL_SECONDS = 5.0
_MAX_EVENTS_PER_TICK = 1000  # drain bound, so an event storm cannot stall a tick

log = logging.getLogger("llmpulse.collectors.gpu")


class GpuCollector:
    """NVML GPU sampler. Not thread-safe: one loop calls ``collect``."""

    TABLES = ("gpu_samples", "gpu_processes")

    def __init__(
        self,
        nvml: Any | None = None,
        *,
        hostname: str | None = None,
        proc_root: str = "/proc",
        read_pcie: bool = True,
    ) -> None:
        self._nvml = nvml
        self.read_pcie = read_pcie
        self.hostname = hostname or socket.gethostname()
        self.proc_root = proc_root
        self.available = False
        self.driver_version = ""
        self.lost_gpus: set[int] = set()  # indices currently lost, reported once each
        self.read_errors = 0  # devices skipped for an unexpected error (counted for the sidecar's /metrics)
        self.last_tick_seconds: float | None = None
        self._reader: DeviceReader | None = None
        self._events: Any = None
        self._xid_registered: set[str] = set()
        self._xid_unreadable: dict[str, str] = {}
        self._warned: set[str] = set()

    # -- lifecycle ----------------------------------------------------------------------------------

    def start(self) -> bool:
        """Initialise NVML. False (and one warning) when there is no library, driver or GPU to talk to."""
        if self.available:
            return True
        try:
            nvml = self._nvml if self._nvml is not None else importlib.import_module("pynvml")
        except ImportError as err:
            log.warning(
                "no NVIDIA GPU/driver found: GPU collection is off (pynvml is not installed: "
                "pip install 'llmpulse[gpu]'; %s)",
                err,
            )
            return False
        try:
            nvml.nvmlInit()
        except Exception as err:
            log.warning("no NVIDIA GPU/driver found: GPU collection is off (%s: %s)", error_name(err), err)
            return False
        self._nvml = nvml
        self._reader = DeviceReader(nvml, read_pcie=self.read_pcie)
        try:
            self.driver_version = text(nvml.nvmlSystemGetDriverVersion())
        except Exception as err:
            log.debug("NVML driver version unreadable: %s", err)
        self._register_xid_events()
        self.available = True
        return True

    def close(self) -> None:
        if not self.available:
            return
        self.available = False
        nvml = self._nvml
        if self._events is not None:
            try:
                nvml.nvmlEventSetFree(self._events)
            except Exception as err:
                log.debug("nvmlEventSetFree failed: %s", err)
            self._events = None
        try:
            nvml.nvmlShutdown()
        except Exception as err:
            log.debug("nvmlShutdown failed: %s", err)

    @property
    def failed_ticks(self) -> int:
        """Always 0: a GPU that cannot be read is skipped for the tick (``read_errors``), the tick goes on."""
        return 0

    # -- one tick -----------------------------------------------------------------------------------

    def collect(self, now: datetime) -> dict[str, list[dict[str, Any]]]:
        """Rows for ``gpu_samples`` and ``gpu_processes`` at ``now`` (timezone-aware). Never raises."""
        result: dict[str, list[dict[str, Any]]] = {"gpu_samples": [], "gpu_processes": []}
        if not self.available:
            return result
        started = time.perf_counter()
        try:
            count = int(self._nvml.nvmlDeviceGetCount())
        except Exception as err:
            self._warn_once("count", "NVML cannot count GPUs (%s): no GPU samples this tick", error_name(err))
            return result
        xids = self._drain_xid_events()
        for index in range(count):
            try:
                samples, processes = self._read_gpu(now, index, xids)
            except GpuLost as err:
                if index not in self.lost_gpus:
                    self.lost_gpus.add(index)
                    log.warning("GPU %d is lost (NVML: %s): no samples from it until it comes back", index, err)
                continue
            except Exception as err:
                self.read_errors += 1
                self._warn_once(f"read:{index}:{type(err).__name__}", "GPU %d unreadable this tick: %r", index, err)
                continue
            if index in self.lost_gpus:
                self.lost_gpus.discard(index)
                log.warning("GPU %d is back", index)
            result["gpu_samples"].extend(samples)
            result["gpu_processes"].extend(processes)
        self.last_tick_seconds = time.perf_counter() - started
        return result

    def _read_gpu(
        self, now: datetime, index: int, xids: dict[str, tuple[int, int]]
    ) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
        nvml, reader = self._nvml, self._reader
        assert reader is not None
        handle = reader.required(lambda: nvml.nvmlDeviceGetHandleByIndex(index))
        row = empty_sample(now, self.hostname, self.driver_version)
        row["GpuIndex"] = index
        reader.identity(row, handle)
        reader.physical(row, handle)
        self._xid_columns(row, xids)
        migs = self._mig_rows(now, index, row["GpuUuid"], handle) if reader.mig_enabled(row, handle) else []
        processes = self._process_rows(now, index, row["GpuUuid"], handle, migs)
        return [row, *(mig_row for mig_row, _ in migs)], processes

    def _mig_rows(self, now: datetime, index: int, parent_uuid: str, handle: Any) -> list[tuple[dict[str, Any], Any]]:
        """(row, MIG handle) of every MIG device of a GPU in MIG mode."""
        reader = self._reader
        assert reader is not None
        rows = []
        for mig_index, mig_handle in reader.mig_handles(handle):
            row = empty_sample(now, self.hostname, self.driver_version)
            row.update(GpuIndex=index, IsMig=True, ParentGpuUuid=parent_uuid, MigIndex=mig_index)
            try:
                reader.identity(row, mig_handle)
            except GpuLost:
                raise
            except Exception as err:  # a MIG slot torn down between listing and reading
                log.debug("MIG device %d.%d unreadable: %s", index, mig_index, err)
                continue
            reader.mig_instance(row, mig_handle)
            rows.append((row, mig_handle))
        return rows

    def _process_rows(
        self, now: datetime, index: int, uuid: str, handle: Any, migs: list[tuple[dict[str, Any], Any]]
    ) -> list[dict[str, Any]]:
        """Processes of one GPU. In MIG mode NVML lists each instance's processes on its MIG handle (the
        parent answers with the aggregate only to privileged callers), so MIG handles first, then the parent
        when they list nothing."""
        found: dict[tuple[int, int | None, int | None], tuple[dict[str, Any], str | None]] = {}
        for mig_row, mig_handle in migs:
            for (pid, gi, ci), entry in list_processes(self._nvml, mig_handle).items():
                gi = mig_row["GpuInstanceId"] if gi is None else gi
                ci = mig_row["ComputeInstanceId"] if ci is None else ci
                entry.update(GpuInstanceId=gi, ComputeInstanceId=ci)
                found[(pid, gi, ci)] = (entry, mig_row["GpuUuid"])
        if not found:
            mig_by_ids = {(m["GpuInstanceId"], m["ComputeInstanceId"]): m["GpuUuid"] for m, _ in migs}
            for (pid, gi, ci), entry in list_processes(self._nvml, handle).items():
                found[(pid, gi, ci)] = (entry, mig_by_ids.get((gi, ci)) if gi is not None else None)
        return [
            {
                "Timestamp": now,
                "Hostname": self.hostname,
                "GpuIndex": index,
                "GpuUuid": uuid,
                "MigUuid": mig_uuid,
                "GpuInstanceId": entry["GpuInstanceId"],
                "ComputeInstanceId": entry["ComputeInstanceId"],
                "Pid": pid,
                "ProcessName": process_name(pid, self.proc_root),
                "ProcessType": entry["ProcessType"],
                "UsedMemoryBytes": entry["UsedMemoryBytes"],
            }
            for (pid, _gi, _ci), (entry, mig_uuid) in sorted(found.items(), key=lambda kv: kv[0][0])
        ]

    # -- XID errors (NVML events) -------------------------------------------------------------------

    def _register_xid_events(self) -> None:
        """Subscribe every GPU to XID critical-error events; a GPU that cannot gets NULL XID columns."""
        nvml = self._nvml
        try:
            self._events = nvml.nvmlEventSetCreate()
            count = int(nvml.nvmlDeviceGetCount())
        except Exception as err:
            self._events = None
            log.debug("NVML events unavailable: %s", err)
            return
        for index in range(count):
            try:
                handle = nvml.nvmlDeviceGetHandleByIndex(index)
                uuid = text(nvml.nvmlDeviceGetUUID(handle))
            except Exception as err:
                log.debug("GPU %d not subscribed to XID events: %s", index, err)
                continue
            try:
                nvml.nvmlDeviceRegisterEvents(handle, nvml.nvmlEventTypeXidCriticalError, self._events)
            except Exception as err:
                self._xid_unreadable[uuid] = error_name(err)
                continue
            self._xid_registered.add(uuid)

    def _drain_xid_events(self) -> dict[str, tuple[int, int]]:
        """{GPU UUID: (XID events since the last tick, last XID code)}, without waiting."""
        found: dict[str, tuple[int, int]] = {}
        if self._events is None:
            return found
        nvml = self._nvml
        wait = getattr(nvml, "nvmlEventSetWait_v2", None) or nvml.nvmlEventSetWait
        timeout = getattr(nvml, "NVMLError_Timeout", ())
        for _ in range(_MAX_EVENTS_PER_TICK):
            try:
                event = wait(self._events, 0)
            except Exception as err:
                if not (timeout and isinstance(err, timeout)):
                    log.debug("NVML event wait failed: %s", err)
                break
            if not int(event.eventType) & int(nvml.nvmlEventTypeXidCriticalError):
                continue
            try:
                uuid = text(nvml.nvmlDeviceGetUUID(event.device))
            except Exception as err:
                log.debug("XID event for an unreadable device: %s", err)
                continue
            count, _last = found.get(uuid, (0, 0))
            found[uuid] = (count + 1, int(event.eventData))
        return found

    def _xid_columns(self, row: dict[str, Any], xids: dict[str, tuple[int, int]]) -> None:
        uuid = row["GpuUuid"]
        if uuid in self._xid_registered:
            count, last = xids.get(uuid, (0, None))
            row["XidErrors"], row["LastXid"] = count, last
        else:
            reason = self._xid_unreadable.get(uuid, "NotSubscribed")
            row["Unreadable"]["XidErrors"] = row["Unreadable"]["LastXid"] = reason

    def _warn_once(self, key: str, message: str, *args: Any) -> None:
        if key in self._warned:
            log.debug(message, *args)
            return
        self._warned.add(key)
        log.warning(message, *args)
