"""A replay NVML module: answers the pynvml calls the GPU collector makes from a recorded JSON fixture.

Everything that is not a call comes from the real ``pynvml`` module: constants, ctypes structs and the
``NVMLError_*`` classes, so the collector meets exactly the errors and objects a driver would give it.
A call the fixture has no answer for is recorded in ``unanswered`` (tests assert it stays empty) and
raises, so a fixture can never silently stand in for a reading it does not hold.

Fixture format (tests/fixtures/nvml/*.json)::

    {"source": "...", "driver_version": "535.129.03",
     "devices": [{"nvmlDeviceGetUUID": "GPU-...", "nvmlDeviceGetPowerUsage": 31000,
                  "nvmlDeviceGetClockInfo": {"NVML_CLOCK_SM": 210, "NVML_CLOCK_MEM": 1593},
                  "nvmlDeviceGetFanSpeed": {"error": "NVML_ERROR_NOT_SUPPORTED"},
                  "mig_devices": [{...same keys for a MIG device...}], ...}],
     "xid_events": [{"gpu": 0, "xid": 79}]}

A call taking an enum argument (sensor, clock, counter, error type, field id) maps the pynvml constant's
*name* to the answer. ``{"error": "NVML_ERROR_..."}`` raises that NVML error.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pynvml

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "nvml"


def load(name: str) -> dict[str, Any]:
    return json.loads((FIXTURES / name).read_text())


class _Handle:
    def __init__(self, data: dict[str, Any], index: int, parent: _Handle | None = None) -> None:
        self.data, self.index, self.parent = data, index, parent

    def gpu_index(self) -> int:
        return self.parent.gpu_index() if self.parent else self.index


class ReplayNvml:
    """Quacks like the ``pynvml`` module for the calls in ``llmpulse.collectors``."""

    def __init__(self, fixture: dict[str, Any]) -> None:
        self.fixture = fixture
        self.handles = [_Handle(d, i) for i, d in enumerate(fixture["devices"])]
        self.lost: set[int] = set()
        self.initialized = False
        self.shutdowns = 0
        self.unanswered: list[str] = []
        self.calls: list[str] = []
        self._pending_xids: list[dict[str, int]] = list(fixture.get("xid_events", []))
        self._registered: set[int] = set()

    def __getattr__(self, name: str) -> Any:
        value = getattr(pynvml, name)  # AttributeError for names pynvml does not have either
        if callable(value) and not isinstance(value, type):
            raise AttributeError(f"the replay NVML does not answer {name}")
        return value

    # -- helpers ------------------------------------------------------------------------------------

    def lose(self, index: int) -> None:
        self.lost.add(index)

    def restore(self, index: int) -> None:
        self.lost.discard(index)

    def push_xid(self, gpu: int, xid: int) -> None:
        self._pending_xids.append({"gpu": gpu, "xid": xid})

    def _answer(self, handle: _Handle, name: str, arg: Any = None) -> Any:
        self.calls.append(name)
        if handle.gpu_index() in self.lost:
            raise pynvml.NVMLError(pynvml.NVML_ERROR_GPU_IS_LOST)
        if name not in handle.data:
            self.unanswered.append(name)
            raise AssertionError(f"fixture has no answer for {name}")
        answer = handle.data[name]
        if isinstance(answer, dict) and "error" not in answer and arg is not None:
            key = next((k for k in answer if getattr(pynvml, k, None) == arg), None)
            if key is None:
                self.unanswered.append(f"{name}({arg})")
                raise AssertionError(f"fixture has no answer for {name}({arg})")
            answer = answer[key]
        if isinstance(answer, dict) and set(answer) == {"error"}:
            raise pynvml.NVMLError(getattr(pynvml, answer["error"]))
        return answer

    # -- system -------------------------------------------------------------------------------------

    def nvmlInit(self) -> None:
        if "init_error" in self.fixture:
            raise pynvml.NVMLError(getattr(pynvml, self.fixture["init_error"]))
        self.initialized = True

    def nvmlShutdown(self) -> None:
        self.shutdowns += 1
        self.initialized = False

    def nvmlSystemGetDriverVersion(self) -> str:
        return self.fixture["driver_version"]

    def nvmlDeviceGetCount(self) -> int:
        return len(self.handles)

    def nvmlDeviceGetHandleByIndex(self, index: int) -> _Handle:
        if index in self.lost:
            raise pynvml.NVMLError(pynvml.NVML_ERROR_GPU_IS_LOST)
        return self.handles[index]

    # -- device readings ----------------------------------------------------------------------------

    def nvmlDeviceGetUUID(self, h: _Handle) -> str:
        return self._answer(h, "nvmlDeviceGetUUID")

    def nvmlDeviceGetName(self, h: _Handle) -> str:
        return self._answer(h, "nvmlDeviceGetName")

    def nvmlDeviceGetUtilizationRates(self, h: _Handle) -> Any:
        a = self._answer(h, "nvmlDeviceGetUtilizationRates")
        return pynvml.c_nvmlUtilization_t(gpu=a["gpu"], memory=a["memory"])

    def nvmlDeviceGetMemoryInfo(self, h: _Handle, version: int | None = None) -> Any:
        a = self._answer(h, "nvmlDeviceGetMemoryInfo")
        if version:
            return pynvml.c_nvmlMemory_v2_t(
                version=version, total=a["total"], reserved=a.get("reserved", 0), free=a["free"], used=a["used"]
            )
        return pynvml.c_nvmlMemory_t(total=a["total"], free=a["free"], used=a["used"] + a.get("reserved", 0))

    def nvmlDeviceGetPowerUsage(self, h: _Handle) -> int:
        return self._answer(h, "nvmlDeviceGetPowerUsage")

    def nvmlDeviceGetEnforcedPowerLimit(self, h: _Handle) -> int:
        return self._answer(h, "nvmlDeviceGetEnforcedPowerLimit")

    def nvmlDeviceGetTotalEnergyConsumption(self, h: _Handle) -> int:
        return self._answer(h, "nvmlDeviceGetTotalEnergyConsumption")

    def nvmlDeviceGetTemperature(self, h: _Handle, sensor: int) -> int:
        return self._answer(h, "nvmlDeviceGetTemperature", sensor)

    def nvmlDeviceGetFieldValues(self, h: _Handle, field_ids: list[int]) -> Any:
        values = (pynvml.c_nvmlFieldValue_t * len(field_ids))()
        for value, field_id in zip(values, field_ids, strict=True):
            value.fieldId = field_id
            try:
                answer = self._answer(h, "nvmlDeviceGetFieldValues", field_id)
            except pynvml.NVMLError as err:  # a per-field failure is reported in the entry, as NVML does
                value.nvmlReturn = err.value
                continue
            value.nvmlReturn = pynvml.NVML_SUCCESS
            value.valueType = pynvml.NVML_VALUE_TYPE_UNSIGNED_INT
            value.value.uiVal = answer
        return values

    def nvmlDeviceGetClockInfo(self, h: _Handle, clock: int) -> int:
        return self._answer(h, "nvmlDeviceGetClockInfo", clock)

    def nvmlDeviceGetCurrentClocksEventReasons(self, h: _Handle) -> int:
        return self._answer(h, "nvmlDeviceGetCurrentClocksEventReasons")

    def nvmlDeviceGetPcieThroughput(self, h: _Handle, counter: int) -> int:
        return self._answer(h, "nvmlDeviceGetPcieThroughput", counter)

    def nvmlDeviceGetTotalEccErrors(self, h: _Handle, error_type: int, counter_type: int) -> int:
        assert counter_type == pynvml.NVML_VOLATILE_ECC
        return self._answer(h, "nvmlDeviceGetTotalEccErrors", error_type)

    def nvmlDeviceGetFanSpeed(self, h: _Handle) -> int:
        return self._answer(h, "nvmlDeviceGetFanSpeed")

    def nvmlDeviceGetPerformanceState(self, h: _Handle) -> int:
        return self._answer(h, "nvmlDeviceGetPerformanceState")

    # -- MIG ----------------------------------------------------------------------------------------

    def nvmlDeviceGetMigMode(self, h: _Handle) -> list[int]:
        return self._answer(h, "nvmlDeviceGetMigMode")

    def nvmlDeviceGetMaxMigDeviceCount(self, h: _Handle) -> int:
        return self._answer(h, "nvmlDeviceGetMaxMigDeviceCount")

    def nvmlDeviceGetMigDeviceHandleByIndex(self, h: _Handle, index: int) -> _Handle:
        migs = h.data.get("mig_devices", [])
        if h.gpu_index() in self.lost:
            raise pynvml.NVMLError(pynvml.NVML_ERROR_GPU_IS_LOST)
        if index >= len(migs):
            raise pynvml.NVMLError(pynvml.NVML_ERROR_NOT_FOUND)
        return _Handle(migs[index], index, parent=h)

    def nvmlDeviceGetGpuInstanceId(self, h: _Handle) -> int:
        return self._answer(h, "nvmlDeviceGetGpuInstanceId")

    def nvmlDeviceGetComputeInstanceId(self, h: _Handle) -> int:
        return self._answer(h, "nvmlDeviceGetComputeInstanceId")

    # -- processes ----------------------------------------------------------------------------------

    def nvmlDeviceGetComputeRunningProcesses(self, h: _Handle) -> list[Any]:
        return [_process(p) for p in self._answer(h, "nvmlDeviceGetComputeRunningProcesses")]

    def nvmlDeviceGetGraphicsRunningProcesses(self, h: _Handle) -> list[Any]:
        return [_process(p) for p in self._answer(h, "nvmlDeviceGetGraphicsRunningProcesses")]

    # -- events -------------------------------------------------------------------------------------

    def nvmlEventSetCreate(self) -> str:
        return "event-set"

    def nvmlDeviceRegisterEvents(self, h: _Handle, event_types: int, event_set: Any) -> None:
        self._answer(h, "nvmlDeviceRegisterEvents")
        assert event_types & pynvml.nvmlEventTypeXidCriticalError
        self._registered.add(h.index)

    def nvmlEventSetWait_v2(self, event_set: Any, timeout_ms: int) -> Any:
        while self._pending_xids:
            event = self._pending_xids.pop(0)
            if event["gpu"] not in self._registered:
                continue
            data = pynvml.c_nvmlEventData_t()
            data.eventType = pynvml.nvmlEventTypeXidCriticalError
            data.eventData = event["xid"]
            return _EventData(self.handles[event["gpu"]], data)
        raise pynvml.NVMLError(pynvml.NVML_ERROR_TIMEOUT)

    def nvmlEventSetFree(self, event_set: Any) -> None:
        return None


class _EventData:
    """``c_nvmlEventData_t`` whose ``device`` is a replay handle (a ctypes struct cannot hold one)."""

    def __init__(self, device: _Handle, data: Any) -> None:
        self.device = device
        self.eventType, self.eventData = data.eventType, data.eventData
        self.gpuInstanceId, self.computeInstanceId = data.gpuInstanceId, data.computeInstanceId


def _process(recorded: dict[str, Any]) -> Any:
    """The object pynvml returns: ``nvmlFriendlyObject`` with None for NVML_VALUE_NOT_AVAILABLE memory."""
    fields = {"gpuInstanceId": 0xFFFFFFFF, "computeInstanceId": 0xFFFFFFFF, **recorded}
    return pynvml.nvmlFriendlyObject(fields)
