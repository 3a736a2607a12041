"""Sensor readers on fixture trees that copy real board layouts (tests/fixtures/sysfs/README.md)."""

from __future__ import annotations

import os
import shutil
import time
from pathlib import Path

import pytest

from runtime.monitor.readings import BoardSensors
from runtime.monitor.sensors.cgroup import find_cgroup, read_cgroup_memory
from runtime.monitor.sensors.cpufreq import read_policies
from runtime.monitor.sensors.memory import ProcessMemoryReader, read_system_memory
from runtime.monitor.sensors.power import find_power
from runtime.monitor.sensors.power.estimate import PROFILES, EstimatedPower, ProcessCpu, detect_profile
from runtime.monitor.sensors.power.hwmon import HwmonPower
from runtime.monitor.sensors.power.iio import IioIna3221Power
from runtime.monitor.sensors.power.pmic import PmicPower, parse_pmic
from runtime.monitor.sensors.power.rapl import RaplPower, energy_delta_uj
from runtime.monitor.sensors.psi import parse_pressure, read_pressure
from runtime.monitor.sensors.thermal import hottest, read_zones
from runtime.monitor.sensors.throttling import parse_throttled
from runtime.monitor.sensors.vcgencmd import Sampled, Vcgencmd

pytestmark = pytest.mark.board  # runs on the emulated arm64 root too (deploy/arm64/check.py)

FIXTURES = Path(__file__).parent / "fixtures" / "sysfs"


@pytest.fixture
def tree(tmp_path):
    """A writable copy of a fixture tree (tests that move counters must not touch the originals)."""

    def copy(name: str) -> Path:
        dest = tmp_path / name
        shutil.copytree(FIXTURES / name, dest, symlinks=True)
        return dest

    return copy


def write(root: Path, path: str, text: str) -> None:
    target = root / path.lstrip("/")
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(text)


def script(path: Path, body: str) -> Path:
    path.write_text("#!/bin/sh\n" + body + "\n")
    path.chmod(0o755)
    return path


# -- hwmon ----------------------------------------------------------------------------------------


def test_hwmon_ina219_power_input_in_microwatts_and_a_gpu_is_not_the_board():
    source = HwmonPower.find(FIXTURES / "ina219")
    reading = source.read(0.0)
    assert reading.watts == pytest.approx(4.128)  # power1_input 4128000 µW; amdgpu's 42.5 W left out
    assert reading.source == "sensor:hwmon/ina219(hwmon1)"


def test_hwmon_power_average_is_read(tree):
    reading = HwmonPower.find(FIXTURES / "acpi-power-meter").read(0.0)
    assert reading.watts == pytest.approx(118.0)
    assert "power_meter" in reading.source


def test_hwmon_ina219_without_power_attribute_uses_bus_volts_times_current(tree):
    root = tree("ina219")
    os.remove(root / "sys/class/hwmon/hwmon1/power1_input")
    reading = HwmonPower.find(root).read(0.0)
    assert reading.watts == pytest.approx(5.084 * 0.812)  # in1 (bus, mV) x curr1 (mA)


def test_ina3221_hwmon_takes_the_total_input_rail_alone():
    reading = HwmonPower.find(FIXTURES / "jetson-orin").read(0.0)
    assert reading.watts == pytest.approx(19.048 * 0.412)  # VDD_IN only: the others are branches of it
    assert reading.source.endswith("/VDD_IN")
    assert set(reading.rails) == {"VDD_IN", "VDD_CPU_GPU_CV", "VDD_SOC"}  # not curr4, the summed channel


def test_ina3221_hwmon_sums_rails_when_none_is_the_input_and_skips_unconnected(tree):
    root = tree("jetson-orin")
    h = root / "sys/class/hwmon/hwmon1"
    (h / "in1_label").write_text("VDD_5V_PERIPH\n")
    (h / "in3_label").write_text("NC\n")
    reading = HwmonPower.find(root).read(0.0)
    assert reading.watts == pytest.approx(19.048 * 0.412 + 19.064 * 0.096)
    (h / "in2_enable").write_text("0\n")
    assert HwmonPower.find(root).read(0.0).watts == pytest.approx(19.048 * 0.412)


def test_ina3221x_iio_layout_takes_pom_5v_in():
    source = IioIna3221Power.find(FIXTURES / "jetson-nano")
    reading = source.read(0.0)
    assert reading.watts == pytest.approx(3.838)  # in_power0_input is mW
    assert reading.source == "sensor:iio/ina3221x(6-0040)/POM_5V_IN"
    assert set(reading.rails) == {"POM_5V_IN", "POM_5V_GPU", "POM_5V_CPU"}


def test_ina3221x_iio_without_power_files_uses_volts_times_current(tree):
    root = tree("jetson-nano")
    for f in (root / "sys/bus/i2c/drivers/ina3221x/6-0040/iio:device0").glob("in_power*_input"):
        f.unlink()
    assert IioIna3221Power.find(root).read(0.0).watts == pytest.approx(5.064 * 0.758)


# -- RAPL -----------------------------------------------------------------------------------------


def test_rapl_power_from_energy_counter_across_wrap_around(tree):
    root = tree("rapl")
    source = RaplPower.find(root)
    assert source.source == "sensor:rapl/package-0"  # core/uncore/dram are subzones: not added
    assert source.read(10.0) is None  # the first read primes the counter
    zone = root / "sys/class/powercap/intel-rapl:0"
    max_range = int((zone / "max_energy_range_uj").read_text())
    before = int((zone / "energy_uj").read_text())
    (zone / "energy_uj").write_text("20000000\n")  # wrapped past max_energy_range_uj
    reading = source.read(12.0)
    assert reading.watts == pytest.approx((20_000_000 + max_range - before) / 1e6 / 2.0)
    (zone / "energy_uj").write_text("36000000\n")  # 16 J in 2 s, no wrap
    assert source.read(14.0).watts == pytest.approx(8.0)


def test_energy_delta_wraps_once():
    assert energy_delta_uj(100, 300, 1000) == 200
    assert energy_delta_uj(900, 100, 1000) == 200


def test_rapl_prefers_psys_when_present(tree):
    root = tree("rapl")
    write(root, "/sys/class/powercap/intel-rapl:1/name", "psys\n")
    write(root, "/sys/class/powercap/intel-rapl:1/energy_uj", "1000\n")
    write(root, "/sys/class/powercap/intel-rapl:1/max_energy_range_uj", "262143328850\n")
    assert RaplPower.find(root).source == "sensor:rapl/psys"


def test_rapl_unreadable_counter_is_no_source(tree):
    # Since Linux 5.10 energy_uj is root-only; any read error (here: EISDIR, as root reads mode 0000) means absent.
    root = tree("rapl")
    counter = root / "sys/class/powercap/intel-rapl:0/energy_uj"
    counter.unlink()
    counter.mkdir()
    assert RaplPower.find(root) is None


# -- vcgencmd: throttling and the Pi 5 PMIC ------------------------------------------------------


def test_get_throttled_flags_now_and_since_boot():
    t = parse_throttled("throttled=0x50005\n")
    assert t.raw == 0x50005
    assert t.now == ("under-voltage", "throttled")
    assert t.since_boot == ("under-voltage", "throttled")
    assert t.under_voltage and t.hot
    clear = parse_throttled("throttled=0x0")
    assert clear.now == () and not clear.hot
    assert parse_throttled("throttled=0x80008").now == ("soft-temperature-limit",)
    assert parse_throttled('error=1 error_msg="Command not registered"') is None


def test_vcgencmd_fixture_command_is_found_under_root_and_run():
    vc = Vcgencmd.find(FIXTURES / "pi4")
    assert vc is not None and vc.path.endswith("pi4/usr/bin/vcgencmd")
    assert parse_throttled(vc.run("get_throttled")).raw == 0x50005
    assert vc.run("pmic_read_adc") is None  # a Pi 4's firmware does not have it
    assert PmicPower.find(vc) is None
    assert Vcgencmd.find(FIXTURES / "ina219") is None


def test_vcgencmd_timeout_is_no_reading(tmp_path):
    slow = Vcgencmd(script(tmp_path / "vcgencmd", "sleep 5; echo throttled=0x0"), timeout_s=0.2)
    start = time.monotonic()
    assert slow.run("get_throttled") is None
    assert time.monotonic() - start < 2.0


PMIC = """\
 3V7_WL_SW_A current(0)=0.10000000A
  VDD_CORE_A current(7)=2.51000000A
   DDR_VDD2_A current(3)=655.35000000A
 3V7_WL_SW_V volt(8)=3.70000000V
  VDD_CORE_V volt(15)=0.84000000V
  DDR_VDD2_V volt(11)=1.11000000V
     EXT5V_V volt(24)=5.12591600V
      BATT_V volt(25)=0.00000000V
"""


def test_pmic_rails_sum_v_times_i_and_drop_implausible():
    rails = parse_pmic(PMIC)
    assert rails == pytest.approx({"3V7_WL_SW": 0.37, "VDD_CORE": 2.51 * 0.84})  # 655 A is a glitch; EXT5V has no current
    assert parse_pmic('error=1 error_msg="Command not registered"\n') == {}


def test_pi5_pmic_through_the_recorded_command():
    root = FIXTURES / "pi5"
    source = find_power(root, vcgencmd=Vcgencmd.find(root))
    reading = source.read(0.0)
    text = (root / "usr/share/vcgencmd/pmic_read_adc.txt").read_text()
    assert reading.source == "sensor:pmic(vcgencmd pmic_read_adc)"
    assert reading.watts == pytest.approx(sum(parse_pmic(text).values()))
    assert reading.rails["VDD_CORE"] == pytest.approx(2.51 * 0.84)
    assert 2.0 < reading.watts < 6.0


def test_sampling_is_no_faster_than_it_is_cheap(tmp_path):
    calls = []

    def slow_fetch():
        calls.append(1)
        time.sleep(0.05)
        return len(calls)

    sampled = Sampled(slow_fetch, min_interval_s=1.0, max_share=0.01)
    assert sampled.get(0.0) == 1
    assert sampled.interval_s >= 5.0  # 50 ms at most 1% of the time: every 5 s or slower
    assert sampled.get(1.0) == 1 and sampled.get(4.0) == 1
    assert sampled.get(sampled.interval_s + 0.01) == 2
    assert len(calls) == 2


# -- memory, cgroup, PSI --------------------------------------------------------------------------


def test_cgroup_v2_found_from_proc_self_cgroup():
    root = FIXTURES / "pi4"
    name, folder = find_cgroup(root)
    assert name == "/system.slice/edgewatch.service"
    mem = read_cgroup_memory(name, folder)
    assert mem.current_mb == pytest.approx(148_635_648 / 2**20)
    assert mem.max_mb == pytest.approx(400.0) and mem.high_mb is None  # "max" = no limit
    assert mem.events["max"] == 3 and mem.events["oom_kill"] == 0
    assert mem.pressure["full"]["avg10"] == pytest.approx(0.80)
    assert mem.source == "sensor:cgroup/system.slice/edgewatch.service"


def test_cgroup_v2_on_a_hybrid_host_is_found_through_mountinfo(tree):
    root = tree("pi4")
    (root / "sys/fs/cgroup").rename(root / "unified")
    (root / "sys/fs/cgroup").mkdir()
    (root / "unified").rename(root / "sys/fs/cgroup/unified")
    write(root, "/proc/self/mountinfo", "41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw\n")
    name, folder = find_cgroup(root)
    assert folder == root / "sys/fs/cgroup/unified/system.slice/edgewatch.service"
    assert read_cgroup_memory(name, folder).max_mb == pytest.approx(400.0)


def test_cgroup_v1_only_is_no_cgroup(tree):
    root = tree("pi4")
    write(root, "/proc/self/cgroup", "4:memory:/system.slice/edgewatch.service\n1:name=systemd:/system.slice/edgewatch.service\n")
    assert find_cgroup(root) is None


def test_psi_format():
    p = parse_pressure("some avg10=1.50 avg60=0.25 avg300=0.00 total=123\nfull avg10=0.10 avg60=0.00 avg300=0.00 total=9\n")
    assert p["some"] == {"avg10": 1.5, "avg60": 0.25, "avg300": 0.0, "total": 123.0}
    assert p["full"]["avg10"] == 0.1
    cpu = read_pressure(FIXTURES / "pi4", "cpu")
    assert cpu["some"]["avg10"] == pytest.approx(3.71)
    assert read_pressure(FIXTURES / "acpi-power-meter" / "nowhere", "memory") is None


def test_meminfo_and_own_process_memory():
    system = read_system_memory(FIXTURES / "pi4")
    assert system.available_mb == pytest.approx(3021800 / 1024)
    assert system.total_mb == pytest.approx(3884324 / 1024)
    reader = ProcessMemoryReader(full_every_s=30.0)
    first = reader.read(0.0)
    assert first.rss_mb > 10 and first.uss_mb is not None and 0 < first.uss_mb <= first.rss_mb
    ballast = bytearray(64 * 2**20)  # RSS follows real allocations
    ballast[:: 4096] = b"x" * len(ballast[:: 4096])
    assert reader.read(1.0).rss_mb > first.rss_mb + 50
    del ballast


# -- thermal, cpufreq ----------------------------------------------------------------------------


def test_thermal_zones_in_millidegrees_and_fixed_pmic_die_left_out():
    zones = read_zones(FIXTURES / "jetson-nano")
    assert "PMIC-Die" not in {z.type for z in zones}  # a fixed 100 °C would pin every budget
    top = hottest(zones)
    assert (top.type, top.celsius) == ("AO-therm", 40.5)
    assert hottest(read_zones(FIXTURES / "pi4")).celsius == pytest.approx(61.832)


def test_broken_thermal_zone_is_skipped(tree):
    root = tree("pi4")
    write(root, "/sys/class/thermal/thermal_zone1/type", "bogus\n")
    write(root, "/sys/class/thermal/thermal_zone1/temp", "-274000\n")
    assert [z.type for z in read_zones(root)] == ["cpu-thermal"]


def test_cpufreq_policies():
    policies = read_policies(FIXTURES / "jetson-orin")
    assert [(p.name, p.cpus, p.cur_mhz, p.max_mhz) for p in policies] == [
        ("policy0", "0 1 2 3", 729.6, 1984.0),
        ("policy4", "4 5 6 7", 729.6, 1984.0),
    ]


# -- the estimate -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "model, key",
    [
        ("Raspberry Pi 4 Model B Rev 1.4", "pi-4b"),
        ("Raspberry Pi 5 Model B Rev 1.0", "pi-5"),
        ("Raspberry Pi Zero 2 W Rev 1.0", "pi-zero-2w"),
        ("Raspberry Pi 3 Model B Plus Rev 1.3", "pi-3b+"),
        ("Raspberry Pi Compute Module 4 Rev 1.0", "pi-4b"),
        ("NVIDIA Jetson Nano Developer Kit", "generic"),
    ],
)
def test_board_profile_from_device_tree_model(tmp_path, model, key):
    write(tmp_path, "/proc/device-tree/model", model + "\x00")
    assert detect_profile(tmp_path).key == key


def test_profiles_carry_the_public_figures():
    assert (PROFILES["pi-4b"].idle_w, PROFILES["pi-4b"].full_w) == (2.7, 6.4)
    assert (PROFILES["pi-5"].idle_w, PROFILES["pi-5"].full_w) == (2.8, 9.7)


def test_the_config_offers_exactly_the_profiles_there_are():
    from runtime.config.sections import BOARD_PROFILES

    assert set(BOARD_PROFILES) == set(PROFILES)


def test_estimate_from_system_cpu_on_a_pi4(tree):
    root = tree("pi4")
    source = find_power(root)
    assert source.source == "estimate:pi-4b-profile(system cpu)"
    assert source.read(0.0) is None  # needs two /proc/stat reads
    stat = (root / "proc/stat").read_text().splitlines()
    ticks = [int(v) for v in stat[0].split()[1:]]
    ticks[0] += 300  # user: 300 busy ticks ...
    ticks[3] += 100  # idle: ... out of 400
    stat[0] = "cpu  " + " ".join(map(str, ticks))
    (root / "proc/stat").write_text("\n".join(stat) + "\n")
    reading = source.read(1.0)
    assert reading.watts == pytest.approx(2.7 + 0.75 * (6.4 - 2.7))
    assert reading.rails == pytest.approx({"idle": 2.7, "cpu": 0.75 * 3.7})


def test_estimate_from_this_process_cpu_use():
    cpu = ProcessCpu(cores=2)
    source = EstimatedPower(PROFILES["pi-4b"], cpu, "process")
    wall0, cpu0 = time.monotonic(), time.process_time()
    assert source.read(wall0) is None
    while time.process_time() - cpu0 < 0.3:  # burn 0.3 s of CPU, however busy the machine is
        sum(range(1000))
    wall1, cpu1 = time.monotonic(), time.process_time()
    reading = source.read(wall1)
    # Our share of two cores times the dynamic range, with nothing for idle (a shared machine).
    share = (cpu1 - cpu0) / ((wall1 - wall0) * 2)
    assert reading.watts == pytest.approx(share * (6.4 - 2.7), abs=0.15)
    assert reading.watts > 0.1
    assert reading.source == "estimate:pi-4b-profile(process cpu, above idle)"
    assert source.baseline_w == 0.0


def test_find_power_picks_the_best_source_first():
    assert find_power(FIXTURES / "ina219").source.startswith("sensor:hwmon")
    assert find_power(FIXTURES / "jetson-nano").source.startswith("sensor:iio")
    assert find_power(FIXTURES / "rapl").source.startswith("sensor:rapl")
    assert find_power(FIXTURES / "pi4", vcgencmd=Vcgencmd.find(FIXTURES / "pi4")).source.startswith("estimate:pi-4b")
    # A meter sees the whole board: the process scope is always our own estimate.
    assert find_power(FIXTURES / "ina219", scope="process").source.startswith("estimate:generic-profile(process")
    assert find_power(FIXTURES / "ina219", profile="pi-5", scope="process").source.startswith("estimate:pi-5")


def test_board_sensors_every_figure_names_its_source():
    sensors = BoardSensors(FIXTURES / "pi5")
    figures = sensors.read(0.0).as_dict()
    assert figures["power"]["source"] == "sensor:pmic(vcgencmd pmic_read_adc)"
    assert figures["temperature"]["source"] == "sensor:thermal/thermal_zone0(cpu-thermal)"
    assert figures["memory"]["source"].startswith("sensor:psutil/pid")
    assert figures["memory"]["cgroup"]["path"] == "/system.slice/edgewatch.service"
    assert figures["throttling"]["source"] == "sensor:vcgencmd get_throttled"
    assert sensors.model == "Raspberry Pi 5 Model B Rev 1.0"
