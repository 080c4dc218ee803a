"""Reading one NVML device into a ``gpu_samples`` row, one field at a time.

Every reading is its own NVML call inside its own guard: a field NVML cannot read (``NotSupported``,
``NoPermission``, a function the driver lacks...) becomes ``None`` (NULL) with the reason recorded in
the row's ``Unreadable`` map, and never costs the other fields. ``GpuIsLost`` is the one error that is
not a field's business: it aborts the device (``GpuLost``) so the collector can report it once.

MIG: NVML reads memory, UUID, name and GPU/compute instance ids per MIG device; utilization, power,
energy, temperatures, clocks, throttle reasons, PCIe, ECC, fan and P-state are per physical GPU only
(NVML answers ``NotSupported`` on a MIG handle, or does not define the call for one), so a MIG row
carries its memory and ids and the parent row carries the rest.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

# nvmlClocksEventReason* / nvmlClocksThrottleReason* bits (nvml.h), decoded into the ThrottleReasons array.
THROTTLE_REASONS: tuple[tuple[int, str], ...] = (
    (0x1, "gpu_idle"),
    (0x2, "applications_clocks_setting"),
    (0x4, "sw_power_cap"),
    (0x8, "hw_slowdown"),
    (0x10, "sync_boost"),
    (0x20, "sw_thermal_slowdown"),
    (0x40, "hw_thermal_slowdown"),
    (0x80, "hw_power_brake_slowdown"),
    (0x100, "display_clock_setting"),
    (0x200, "board_limit"),
    (0x400, "reliability"),
)
_KNOWN_THROTTLE_BITS = sum(bit for bit, _ in THROTTLE_REASONS)
_PSTATE_UNKNOWN = 32  # NVML_PSTATE_UNKNOWN
_NOT_A_MIG_INSTANCE = 0xFFFFFFFF  # gpuInstanceId/computeInstanceId of a process outside MIG

SAMPLE_COLUMNS: tuple[str, ...] = (
    "Timestamp",
    "Hostname",
    "GpuIndex",
    "GpuUuid",
    "GpuName",
    "DriverVersion",
    "IsMig",
    "ParentGpuUuid",
    "MigIndex",
    "GpuInstanceId",
    "ComputeInstanceId",
    "GpuUtilizationPercent",
    "MemoryUtilizationPercent",
    "MemoryUsedBytes",
    "MemoryFreeBytes",
    "MemoryTotalBytes",
    "PowerDrawWatts",
    "PowerLimitWatts",
    "EnergyMillijoules",
    "GpuTemperatureCelsius",
    "MemoryTemperatureCelsius",
    "SmClockMHz",
    "MemoryClockMHz",
    "ThrottleReasonsMask",
    "ThrottleReasons",
    "PcieTxKBPerSecond",
    "PcieRxKBPerSecond",
    "EccCorrectedVolatile",
    "EccUncorrectedVolatile",
    "XidErrors",
    "LastXid",
    "FanSpeedPercent",
    "PerformanceState",
    "Unreadable",
)


class GpuLost(Exception):
    """NVML says the GPU has fallen off the bus (``NVMLError_GpuIsLost``)."""


def text(value: Any) -> str:
    """NVML strings are ``bytes`` in old pynvml releases and ``str`` in new ones."""
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)


def error_name(err: BaseException) -> str:
    """``NVMLError_NotSupported`` -> ``NotSupported``; any other exception -> its class name."""
    return type(err).__name__.removeprefix("NVMLError_")


def decode_throttle_reasons(mask: int) -> list[str]:
    names = [name for bit, name in THROTTLE_REASONS if mask & bit]
    unknown = mask & ~_KNOWN_THROTTLE_BITS
    if unknown:
        names.append(f"unknown_{unknown:#x}")
    return names


def empty_sample(now: Any, hostname: str, driver_version: str) -> dict[str, Any]:
    row: dict[str, Any] = dict.fromkeys(SAMPLE_COLUMNS)
    row.update(
        Timestamp=now,
        Hostname=hostname,
        DriverVersion=driver_version,
        IsMig=False,
        ParentGpuUuid="",
        ThrottleReasons=[],
        Unreadable={},
    )
    return row


class DeviceReader:
    """Reads the fields of one device handle into a row; owns the per-field error policy."""

    def __init__(self, nvml: Any, *, read_pcie: bool = True) -> None:
        self.nvml = nvml
        self.read_pcie = read_pcie
        self._lost_error: type[BaseException] | tuple[()] = getattr(nvml, "NVMLError_GpuIsLost", ())
        self._memory_v2: Any = getattr(nvml, "nvmlMemory_v2", None)

    def call(self, row: dict[str, Any], columns: tuple[str, ...], fn: Callable[[], Any]) -> Any:
        """Run one NVML read; on failure set ``columns`` to None and record why. Returns None on failure."""
        try:
            return fn()
        except Exception as err:
            if self._lost_error and isinstance(err, self._lost_error):
                raise GpuLost(str(err)) from err
            for column in columns:
                row[column] = None
                row["Unreadable"][column] = error_name(err)
            return None

    def set(self, row: dict[str, Any], column: str, fn: Callable[[], Any], convert: Callable[[Any], Any] = int) -> None:
        value = self.call(row, (column,), fn)
        if value is not None:
            row[column] = convert(value)
            if row[column] is None:  # NVML answered, but with its "unknown" value
                row["Unreadable"][column] = "Unknown"

    # -- identity ---------------------------------------------------------------------------------

    def identity(self, row: dict[str, Any], handle: Any) -> None:
        nvml = self.nvml
        row["GpuUuid"] = text(self.required(lambda: nvml.nvmlDeviceGetUUID(handle)))
        name = self.call(row, ("GpuName",), lambda: nvml.nvmlDeviceGetName(handle))
        row["GpuName"] = text(name) if name is not None else ""

    def required(self, fn: Callable[[], Any]) -> Any:
        try:
            return fn()
        except Exception as err:
            if self._lost_error and isinstance(err, self._lost_error):
                raise GpuLost(str(err)) from err
            raise

    # -- readings -----------------------------------------------------------------------------------

    def utilization(self, row: dict[str, Any], handle: Any) -> None:
        columns = ("GpuUtilizationPercent", "MemoryUtilizationPercent")
        rates = self.call(row, columns, lambda: self.nvml.nvmlDeviceGetUtilizationRates(handle))
        if rates is not None:
            row["GpuUtilizationPercent"] = int(rates.gpu)
            row["MemoryUtilizationPercent"] = int(rates.memory)

    def memory(self, row: dict[str, Any], handle: Any) -> None:
        columns = ("MemoryUsedBytes", "MemoryFreeBytes", "MemoryTotalBytes")
        info = self.call(row, columns, lambda: self._memory_info(handle))
        if info is not None:
            row["MemoryUsedBytes"], row["MemoryFreeBytes"] = int(info.used), int(info.free)
            row["MemoryTotalBytes"] = int(info.total)

    def _memory_info(self, handle: Any) -> Any:
        """v2 reports ``used`` without the driver's reserved memory, as nvidia-smi shows it; v1 if absent."""
        if self._memory_v2 is not None:
            try:
                return self.nvml.nvmlDeviceGetMemoryInfo(handle, version=self._memory_v2)
            except (TypeError, getattr(self.nvml, "NVMLError_FunctionNotFound", TypeError)):
                self._memory_v2 = None  # an older driver: remember, and use v1 from now on
        return self.nvml.nvmlDeviceGetMemoryInfo(handle)

    def physical(self, row: dict[str, Any], handle: Any) -> None:
        """Every per-GPU reading of a physical device."""
        nvml = self.nvml
        self.utilization(row, handle)
        self.memory(row, handle)
        self.set(row, "PowerDrawWatts", lambda: nvml.nvmlDeviceGetPowerUsage(handle), _milli)
        self.set(row, "PowerLimitWatts", lambda: nvml.nvmlDeviceGetEnforcedPowerLimit(handle), _milli)
        self.set(row, "EnergyMillijoules", lambda: nvml.nvmlDeviceGetTotalEnergyConsumption(handle))
        self.set(row, "GpuTemperatureCelsius", lambda: nvml.nvmlDeviceGetTemperature(handle, nvml.NVML_TEMPERATURE_GPU))
        self.set(row, "MemoryTemperatureCelsius", lambda: self._field_value(handle, nvml.NVML_FI_DEV_MEMORY_TEMP))
        self.set(row, "SmClockMHz", lambda: nvml.nvmlDeviceGetClockInfo(handle, nvml.NVML_CLOCK_SM))
        self.set(row, "MemoryClockMHz", lambda: nvml.nvmlDeviceGetClockInfo(handle, nvml.NVML_CLOCK_MEM))
        self.throttle(row, handle)
        self.pcie(row, handle)
        self.set(row, "EccCorrectedVolatile", lambda: self._ecc(handle, nvml.NVML_MEMORY_ERROR_TYPE_CORRECTED))
        self.set(row, "EccUncorrectedVolatile", lambda: self._ecc(handle, nvml.NVML_MEMORY_ERROR_TYPE_UNCORRECTED))
        self.set(row, "FanSpeedPercent", lambda: nvml.nvmlDeviceGetFanSpeed(handle))
        self.set(row, "PerformanceState", lambda: nvml.nvmlDeviceGetPerformanceState(handle), _pstate)

    def pcie(self, row: dict[str, Any], handle: Any) -> None:
        """NVML counts PCIe bytes over a 20 ms window per call: the slowest readings, so they can be off."""
        nvml = self.nvml
        if not self.read_pcie:
            row["Unreadable"]["PcieTxKBPerSecond"] = row["Unreadable"]["PcieRxKBPerSecond"] = "Disabled"
            return
        tx, rx = nvml.NVML_PCIE_UTIL_TX_BYTES, nvml.NVML_PCIE_UTIL_RX_BYTES
        self.set(row, "PcieTxKBPerSecond", lambda: nvml.nvmlDeviceGetPcieThroughput(handle, tx))
        self.set(row, "PcieRxKBPerSecond", lambda: nvml.nvmlDeviceGetPcieThroughput(handle, rx))

    def throttle(self, row: dict[str, Any], handle: Any) -> None:
        mask = self.call(row, ("ThrottleReasonsMask",), lambda: self._throttle_mask(handle))
        if mask is not None:
            row["ThrottleReasonsMask"] = int(mask)
            row["ThrottleReasons"] = decode_throttle_reasons(int(mask))

    def _throttle_mask(self, handle: Any) -> Any:
        """``ClocksEventReasons`` (driver >= 535) with the deprecated ``ClocksThrottleReasons`` as fallback."""
        nvml = self.nvml
        newer = getattr(nvml, "nvmlDeviceGetCurrentClocksEventReasons", None)
        if newer is not None:
            try:
                return newer(handle)
            except getattr(nvml, "NVMLError_FunctionNotFound", ()):
                pass
        return nvml.nvmlDeviceGetCurrentClocksThrottleReasons(handle)

    def _ecc(self, handle: Any, error_type: int) -> Any:
        return self.nvml.nvmlDeviceGetTotalEccErrors(handle, error_type, self.nvml.NVML_VOLATILE_ECC)

    def _field_value(self, handle: Any, field_id: int) -> Any:
        """One ``nvmlDeviceGetFieldValues`` entry; a per-field failure raises that field's NVML error."""
        nvml = self.nvml
        (value,) = nvml.nvmlDeviceGetFieldValues(handle, [field_id])
        if value.nvmlReturn != nvml.NVML_SUCCESS:
            raise nvml.NVMLError(value.nvmlReturn)
        return _field_number(nvml, value)

    def mig_enabled(self, row: dict[str, Any], handle: Any) -> bool:
        """Current MIG mode; a GPU that cannot do MIG (NotSupported) is simply not in MIG mode."""
        try:
            current, _pending = self.nvml.nvmlDeviceGetMigMode(handle)
        except Exception as err:
            if self._lost_error and isinstance(err, self._lost_error):
                raise GpuLost(str(err)) from err
            return False
        return bool(current == getattr(self.nvml, "NVML_DEVICE_MIG_ENABLE", 1))

    def mig_handles(self, handle: Any) -> list[tuple[int, Any]]:
        """(MIG index, handle) of every populated MIG slot; empty slots answer NotFound."""
        nvml = self.nvml
        try:
            slots = int(nvml.nvmlDeviceGetMaxMigDeviceCount(handle))
        except Exception as err:
            if self._lost_error and isinstance(err, self._lost_error):
                raise GpuLost(str(err)) from err
            return []
        found = []
        for index in range(slots):
            try:
                found.append((index, nvml.nvmlDeviceGetMigDeviceHandleByIndex(handle, index)))
            except Exception as err:
                if self._lost_error and isinstance(err, self._lost_error):
                    raise GpuLost(str(err)) from err
        return found

    def mig_instance(self, row: dict[str, Any], handle: Any) -> None:
        nvml = self.nvml
        self.set(row, "GpuInstanceId", lambda: nvml.nvmlDeviceGetGpuInstanceId(handle))
        self.set(row, "ComputeInstanceId", lambda: nvml.nvmlDeviceGetComputeInstanceId(handle))
        self.memory(row, handle)
        self.utilization(row, handle)  # NVML has no per-MIG utilization: expect NotSupported, recorded as such


def instance_id(value: Any) -> int | None:
    """A process's GPU/compute instance id, or None when it does not run inside a MIG instance."""
    if value is None:
        return None
    value = int(value)
    return None if value == _NOT_A_MIG_INSTANCE else value


def _milli(value: Any) -> float:
    return int(value) / 1000.0


def _pstate(value: Any) -> int | None:
    value = int(value)
    return None if value == _PSTATE_UNKNOWN or value < 0 else value


def _field_number(nvml: Any, value: Any) -> Any:
    kind = value.valueType
    union = value.value
    by_type = {
        getattr(nvml, "NVML_VALUE_TYPE_DOUBLE", 0): "dVal",
        getattr(nvml, "NVML_VALUE_TYPE_UNSIGNED_INT", 1): "uiVal",
        getattr(nvml, "NVML_VALUE_TYPE_UNSIGNED_LONG", 2): "ulVal",
        getattr(nvml, "NVML_VALUE_TYPE_UNSIGNED_LONG_LONG", 3): "ullVal",
        getattr(nvml, "NVML_VALUE_TYPE_SIGNED_LONG_LONG", 4): "sllVal",
        getattr(nvml, "NVML_VALUE_TYPE_SIGNED_INT", 5): "siVal",
        getattr(nvml, "NVML_VALUE_TYPE_UNSIGNED_SHORT", 6): "usVal",
    }
    return getattr(union, by_type.get(kind, "uiVal"))
