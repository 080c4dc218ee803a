"""GPU collector against recorded NVML readings (replayed behind the ``nvml`` seam) and the real pynvml."""

from __future__ import annotations

import copy
import logging
import sys
from datetime import datetime, timezone
from pathlib import Path

import pynvml
import pytest
from llmpulse.collectors.gpu import DEFAULT_INTERVAL_SECONDS, GpuCollector
from llmpulse.collectors.nvml_fields import SAMPLE_COLUMNS, decode_throttle_reasons
from llmpulse.collectors.nvml_processes import PROCESS_COLUMNS

from .nvml_replay import ReplayNvml, load
from .store_rows import create_schema, insert_rows

# recent: rows older than the samples TTL (30 days) are dropped as they are inserted
NOW = datetime.now(timezone.utc).replace(microsecond=250000)
MiB = 1048576
A100 = "a100_pcie_2gpu_mig.json"
CONSUMER = "rtx4060ti_consumer.json"
WARNING = "no NVIDIA GPU/driver found: GPU collection is off"


def _proc(tmp_path: Path, pid: int, comm: str, cmdline: str = "") -> None:
    d = tmp_path / str(pid)
    d.mkdir()
    (d / "comm").write_text(comm + "\n")
    (d / "cmdline").write_bytes(cmdline.encode() + b"\0")


def _collector(fixture: dict, tmp_path: Path) -> tuple[GpuCollector, ReplayNvml]:
    nvml = ReplayNvml(fixture)
    collector = GpuCollector(nvml, hostname="gpu-node-1", proc_root=str(tmp_path))
    assert collector.start() is True
    return collector, nvml


def test_interval_default() -> None:
    assert DEFAULT_INTERVAL_SECONDS == 5.0


def test_two_a100s_one_in_mig_mode(tmp_path: Path) -> None:
    _proc(tmp_path, 3380462, "VLLM::EngineCor", "VLLM::EngineCore")  # comm truncated to 15 characters
    collector, nvml = _collector(load(A100), tmp_path)
    rows = collector.collect(NOW)

    samples = rows["gpu_samples"]
    assert all(tuple(r) == SAMPLE_COLUMNS for r in samples)
    physical = [r for r in samples if not r["IsMig"]]
    mig = [r for r in samples if r["IsMig"]]
    assert [r["GpuIndex"] for r in physical] == [0, 1] and len(mig) == 4

    gpu0, gpu1 = physical
    assert gpu0["GpuUuid"] == "GPU-31515c3d-1414-7c2c-004a-f86a898946ac"
    assert gpu0["GpuName"] == "NVIDIA A100-PCIE-40GB" and gpu0["DriverVersion"] == "535.129.03"
    assert gpu0["Hostname"] == "gpu-node-1" and gpu0["Timestamp"] == NOW
    # MIG mode: NVML has no whole-GPU utilization -> NULL with the reason, the other readings intact
    assert gpu0["GpuUtilizationPercent"] is None and gpu0["MemoryUtilizationPercent"] is None
    assert gpu0["Unreadable"]["GpuUtilizationPercent"] == "NotSupported"
    assert gpu0["PowerDrawWatts"] == 31.0 and gpu0["PowerLimitWatts"] == 250.0
    assert gpu0["EnergyMillijoules"] == 319159391
    assert gpu0["GpuTemperatureCelsius"] == 28 and gpu0["MemoryTemperatureCelsius"] == 43
    assert (gpu0["SmClockMHz"], gpu0["MemoryClockMHz"]) == (210, 1593)
    assert gpu0["ThrottleReasonsMask"] == 1 and gpu0["ThrottleReasons"] == ["gpu_idle"]
    assert (gpu0["PcieTxKBPerSecond"], gpu0["PcieRxKBPerSecond"]) == (0, 0)
    assert (gpu0["EccCorrectedVolatile"], gpu0["EccUncorrectedVolatile"]) == (0, 0)
    assert gpu0["FanSpeedPercent"] is None and gpu0["Unreadable"]["FanSpeedPercent"] == "NotSupported"
    assert gpu0["PerformanceState"] == 0
    assert (gpu0["XidErrors"], gpu0["LastXid"]) == (0, None)
    assert gpu0["MemoryTotalBytes"] == 40960 * MiB and gpu0["MemoryUsedBytes"] == 50 * MiB
    assert (gpu0["MigIndex"], gpu0["GpuInstanceId"], gpu0["ParentGpuUuid"]) == (None, None, "")

    assert gpu1["GpuUtilizationPercent"] == 0 and gpu1["MemoryUsedBytes"] == 39346 * MiB
    assert gpu1["Unreadable"] == {"FanSpeedPercent": "NotSupported"}

    assert [m["GpuInstanceId"] for m in mig] == [3, 4, 5, 6]
    for index, m in enumerate(mig):
        assert m["ParentGpuUuid"] == gpu0["GpuUuid"] and m["GpuUuid"].startswith("MIG-")
        assert (m["GpuIndex"], m["MigIndex"], m["ComputeInstanceId"]) == (0, index, 0)
        assert m["GpuName"] == "NVIDIA A100-PCIE-40GB MIG 1g.10gb"
        assert m["MemoryTotalBytes"] == 9856 * MiB and m["MemoryUsedBytes"] == 12 * MiB
        assert m["GpuUtilizationPercent"] is None and m["Unreadable"]["GpuUtilizationPercent"] == "NotSupported"
        # per-GPU readings live in the parent row only: not read, so not claimed unreadable either
        assert m["PowerDrawWatts"] is None and "PowerDrawWatts" not in m["Unreadable"]

    processes = rows["gpu_processes"]
    assert all(tuple(p) == PROCESS_COLUMNS for p in processes)
    by_pid = {p["Pid"]: p for p in processes}
    on_mig = by_pid[4120]
    assert on_mig["GpuUuid"] == gpu0["GpuUuid"] and on_mig["MigUuid"] == mig[0]["GpuUuid"]
    assert (on_mig["GpuInstanceId"], on_mig["ComputeInstanceId"]) == (3, 0)
    assert on_mig["ProcessName"] is None  # no /proc entry: another PID namespace
    vllm = by_pid[3380462]
    assert vllm["ProcessName"] == "VLLM::EngineCore" and vllm["ProcessType"] == "compute"
    assert vllm["UsedMemoryBytes"] == 39336 * MiB and vllm["MigUuid"] is None and vllm["GpuInstanceId"] is None
    assert nvml.unanswered == []
    collector.close()
    assert nvml.shutdowns == 1


def test_mig_processes_from_the_parent_when_mig_handles_list_none(tmp_path: Path) -> None:
    """A privileged caller gets the MIG aggregate on the parent, each process tagged with its instance."""
    fixture = copy.deepcopy(load(A100))
    gpu0 = fixture["devices"][0]
    for mig in gpu0["mig_devices"]:
        mig["nvmlDeviceGetComputeRunningProcesses"] = {"error": "NVML_ERROR_NOT_SUPPORTED"}
    gpu0["nvmlDeviceGetComputeRunningProcesses"] = [
        {"pid": 4120, "usedGpuMemory": 4 * MiB, "gpuInstanceId": 5, "computeInstanceId": 0}
    ]
    gpu0["nvmlDeviceGetGraphicsRunningProcesses"] = []
    collector, _nvml = _collector(fixture, tmp_path)
    rows = collector.collect(NOW)
    (proc,) = [p for p in rows["gpu_processes"] if p["GpuIndex"] == 0]
    mig5 = next(r for r in rows["gpu_samples"] if r["GpuInstanceId"] == 5)
    assert (proc["MigUuid"], proc["GpuInstanceId"], proc["ComputeInstanceId"]) == (mig5["GpuUuid"], 5, 0)


def test_consumer_gpu_reads_what_it_can_and_null_for_the_rest(tmp_path: Path) -> None:
    _proc(tmp_path, 93803, "Xorg")
    _proc(tmp_path, 98077, "chrome")
    collector, nvml = _collector(load(CONSUMER), tmp_path)
    rows = collector.collect(NOW)
    gpu0, gpu1 = rows["gpu_samples"]
    unreadable = {
        "EnergyMillijoules",
        "MemoryTemperatureCelsius",
        "EccCorrectedVolatile",
        "EccUncorrectedVolatile",
        "XidErrors",
        "LastXid",
    }
    for row in (gpu0, gpu1):
        assert set(row["Unreadable"]) == unreadable
        assert set(row["Unreadable"].values()) == {"NotSupported"}
        for column in unreadable:
            assert row[column] is None, column
        assert row["PowerLimitWatts"] == 165.0 and row["SmClockMHz"] == 2610
        assert row["MemoryUsedBytes"] == 0 and row["MemoryTotalBytes"] == 16380 * MiB
        assert row["MemoryFreeBytes"] == (16380 - 303) * MiB  # v2: the driver's reserve is neither used nor free
    assert gpu0["FanSpeedPercent"] == 0  # a stopped fan is a real 0, not NULL
    assert gpu1["FanSpeedPercent"] == 39 and gpu1["PowerDrawWatts"] == 34.51
    assert all(not r["IsMig"] for r in rows["gpu_samples"])  # MIG NotSupported = not in MIG mode

    by_pid = {p["Pid"]: p for p in rows["gpu_processes"]}
    assert set(by_pid) == {93803, 94032, 98077, 98123}
    assert by_pid[98077]["ProcessType"] == "compute+graphics" and by_pid[98077]["UsedMemoryBytes"] == 167 * MiB
    assert by_pid[98077]["ProcessName"] == "chrome"
    assert by_pid[93803]["ProcessType"] == "graphics" and by_pid[93803]["ProcessName"] == "Xorg"
    assert by_pid[94032]["ProcessName"] is None
    assert by_pid[98123]["UsedMemoryBytes"] is None  # NVML_VALUE_NOT_AVAILABLE, never 0
    assert nvml.unanswered == []


def test_one_failing_field_never_loses_the_others(tmp_path: Path) -> None:
    fixture = copy.deepcopy(load(A100))
    device = fixture["devices"][1]
    device["nvmlDeviceGetPowerUsage"] = {"error": "NVML_ERROR_NO_PERMISSION"}
    device["nvmlDeviceGetClockInfo"]["NVML_CLOCK_SM"] = {"error": "NVML_ERROR_UNKNOWN"}
    device["nvmlDeviceGetPerformanceState"] = 32  # NVML_PSTATE_UNKNOWN
    device["nvmlDeviceGetCurrentClocksEventReasons"] = 0x1 | 0x4 | 0x1000
    collector, _nvml = _collector(fixture, tmp_path)
    gpu1 = collector.collect(NOW)["gpu_samples"][-1]
    assert gpu1["GpuIndex"] == 1 and not gpu1["IsMig"]
    assert gpu1["PowerDrawWatts"] is None and gpu1["Unreadable"]["PowerDrawWatts"] == "NoPermission"
    assert gpu1["SmClockMHz"] is None and gpu1["Unreadable"]["SmClockMHz"] == "Unknown"
    assert gpu1["MemoryClockMHz"] == 1593 and gpu1["PowerLimitWatts"] == 250.0
    assert gpu1["PerformanceState"] is None and gpu1["Unreadable"]["PerformanceState"] == "Unknown"
    assert gpu1["ThrottleReasons"] == ["gpu_idle", "sw_power_cap", "unknown_0x1000"]


def test_pcie_reads_can_be_switched_off(tmp_path: Path) -> None:
    nvml = ReplayNvml(load(A100))
    collector = GpuCollector(nvml, hostname="h", proc_root=str(tmp_path), read_pcie=False)
    assert collector.start()
    gpu0 = collector.collect(NOW)["gpu_samples"][0]
    assert gpu0["PcieTxKBPerSecond"] is None and gpu0["Unreadable"]["PcieTxKBPerSecond"] == "Disabled"
    assert "nvmlDeviceGetPcieThroughput" not in nvml.calls and gpu0["PowerDrawWatts"] == 31.0


def test_decode_throttle_reasons() -> None:
    assert decode_throttle_reasons(0) == []
    assert decode_throttle_reasons(0x40 | 0x80) == ["hw_thermal_slowdown", "hw_power_brake_slowdown"]


def test_a_lost_gpu_is_reported_once_and_the_others_keep_reporting(tmp_path: Path, caplog) -> None:
    collector, nvml = _collector(load(CONSUMER), tmp_path)
    nvml.lose(1)
    with caplog.at_level(logging.WARNING, logger="llmpulse.collectors.gpu"):
        for _ in range(3):
            rows = collector.collect(NOW)
            assert [r["GpuIndex"] for r in rows["gpu_samples"]] == [0]
    lost = [r for r in caplog.records if "is lost" in r.getMessage()]
    assert len(lost) == 1 and "GPU 1 is lost" in lost[0].getMessage()
    assert collector.lost_gpus == {1}
    nvml.restore(1)
    with caplog.at_level(logging.WARNING, logger="llmpulse.collectors.gpu"):
        rows = collector.collect(NOW)
    assert [r["GpuIndex"] for r in rows["gpu_samples"]] == [0, 1]
    assert any("GPU 1 is back" in r.getMessage() for r in caplog.records) and collector.lost_gpus == set()


def test_xid_errors_are_counted_per_tick(tmp_path: Path) -> None:
    collector, nvml = _collector(load(A100), tmp_path)
    nvml.push_xid(1, 79)
    nvml.push_xid(1, 48)
    samples = collector.collect(NOW)["gpu_samples"]
    by_index = {r["GpuIndex"]: r for r in samples if not r["IsMig"]}
    assert (by_index[1]["XidErrors"], by_index[1]["LastXid"]) == (2, 48)
    assert (by_index[0]["XidErrors"], by_index[0]["LastXid"]) == (0, None)
    again = {r["GpuIndex"]: r for r in collector.collect(NOW)["gpu_samples"] if not r["IsMig"]}
    assert again[1]["XidErrors"] == 0


def test_driver_not_loaded_is_one_warning(caplog) -> None:
    fixture = {"init_error": "NVML_ERROR_DRIVER_NOT_LOADED", "devices": []}
    collector = GpuCollector(ReplayNvml(fixture))
    with caplog.at_level(logging.WARNING, logger="llmpulse.collectors.gpu"):
        assert collector.start() is False
    (record,) = caplog.records
    assert WARNING in record.getMessage() and "DriverNotLoaded" in record.getMessage()
    assert collector.collect(NOW) == {"gpu_samples": [], "gpu_processes": []}
    collector.close()


def test_without_pynvml_installed(monkeypatch, caplog) -> None:
    monkeypatch.setitem(sys.modules, "pynvml", None)  # import pynvml -> ImportError
    collector = GpuCollector()
    with caplog.at_level(logging.WARNING, logger="llmpulse.collectors.gpu"):
        assert collector.start() is False
    (record,) = caplog.records
    assert WARNING in record.getMessage() and "pynvml is not installed" in record.getMessage()


def _machine_has_nvml() -> bool:
    try:
        pynvml.nvmlInit()
    except pynvml.NVMLError:
        return False
    pynvml.nvmlShutdown()
    return True


@pytest.mark.skipif(_machine_has_nvml(), reason="this machine has an NVIDIA driver: the no-driver path cannot run")
def test_real_pynvml_without_a_driver_says_so_once_and_never_raises(caplog) -> None:
    collector = GpuCollector()  # the real pynvml module, imported lazily
    with caplog.at_level(logging.WARNING, logger="llmpulse.collectors.gpu"):
        assert collector.start() is False
        assert collector.collect(NOW) == {"gpu_samples": [], "gpu_processes": []}
        assert collector.collect(NOW) == {"gpu_samples": [], "gpu_processes": []}
        collector.close()
    messages = [r.getMessage() for r in caplog.records]
    assert len(messages) == 1 and WARNING in messages[0], messages
    assert collector.available is False


def test_rows_round_trip_through_chdb_with_nulls(ch, database, tmp_path: Path) -> None:
    _proc(tmp_path, 3380462, "VLLM::EngineCor", "VLLM::EngineCore")
    create_schema(ch, database)
    for fixture in (A100, CONSUMER):
        collector, _nvml = _collector(load(fixture), tmp_path)
        rows = collector.collect(NOW)
        for table in GpuCollector.TABLES:
            insert_rows(ch, database, table, rows[table])

    result = ch.query(
        f"""SELECT GpuName, IsMig, GpuUtilizationPercent, EnergyMillijoules, MemoryTemperatureCelsius,
                   FanSpeedPercent, XidErrors, Unreadable['EnergyMillijoules'], ThrottleReasons, Timestamp
            FROM {database}.gpu_samples WHERE NOT IsMig ORDER BY GpuName, GpuIndex"""
    ).result_rows
    assert [r[:8] for r in result] == [
        ("NVIDIA A100-PCIE-40GB", False, None, 319159391, 43, None, 0, ""),
        ("NVIDIA A100-PCIE-40GB", False, 0, 301874455, 41, None, 0, ""),
        ("NVIDIA GeForce RTX 4060 Ti", False, 0, None, None, 0, None, "NotSupported"),
        ("NVIDIA GeForce RTX 4060 Ti", False, 0, None, None, 39, None, "NotSupported"),
    ]
    assert all(r[8] == ["gpu_idle"] for r in result)
    assert result[0][9].replace(tzinfo=timezone.utc) == NOW

    mig = ch.query(
        f"SELECT count(), uniqExact(ParentGpuUuid), sum(MemoryTotalBytes), countIf(GpuUtilizationPercent IS NULL) "
        f"FROM {database}.gpu_samples WHERE IsMig"
    ).result_rows
    assert mig == [(4, 1, 4 * 9856 * MiB, 4)]

    processes = ch.query(
        f"SELECT Pid, ProcessName, ProcessType, UsedMemoryBytes, MigUuid, GpuInstanceId "
        f"FROM {database}.gpu_processes ORDER BY Pid"
    ).result_rows
    assert processes == [
        (4120, None, "compute", 4 * MiB, "MIG-0a6d1f4e-2b1c-5f0e-9c3d-7e5a1b2c3d40", 3),
        (93803, None, "graphics", 432 * MiB, None, None),
        (94032, None, "graphics", 72 * MiB, None, None),
        (98077, None, "compute+graphics", 167 * MiB, None, None),
        (98123, None, "compute", None, None, None),
        (3380462, "VLLM::EngineCore", "compute", 39336 * MiB, None, None),
    ]
