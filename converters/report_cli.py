"""`edgewatch report BUNDLE`: print a bundle's conversion report, as a table or JSON, or plot it."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from runtime import exitcodes
from runtime.errors import CommandError


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("bundle", type=Path, help="a bundle folder, or its report.json")
    parser.add_argument("--json", action="store_true", help="print the report as JSON")
    parser.add_argument("--plot", type=Path, metavar="PNG", help="draw fidelity against latency, file size and memory, with the frontier")


def load_report(path: Path) -> dict:
    from .conversion import REPORT

    file = path / REPORT if path.is_dir() else path
    try:
        report = json.loads(file.read_text())
    except FileNotFoundError:
        raise CommandError(f"{file}: no such file (a bundle written by `edgewatch convert` has one)") from None
    except (OSError, ValueError) as exc:
        raise CommandError(f"{file}: not a readable report ({exc})") from None
    if not isinstance(report, dict) or not isinstance(report.get("variants"), list):
        raise CommandError(f"{file}: variants: missing, not a conversion report")
    return report


def run(args: argparse.Namespace) -> int:
    from .report import table

    report = load_report(args.bundle)
    if args.plot:
        from .plot import plot

        plot(report, args.plot)
    if args.json:
        print(json.dumps(report, indent=2))
    elif not args.plot:
        print(table(report))
    return exitcodes.OK
