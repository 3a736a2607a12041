"""`edgewatch`: one entry point, one module per subcommand, imported only when chosen.

Importing only the chosen command keeps start-up fast on a board (no converter, no TensorFlow,
no SQLite for `detect`), which is what import-to-first-detection measures.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys

from . import __version__, exitcodes
from .errors import CommandError

# name -> (module, one-line help). `convert` lives in the workstation package and needs TensorFlow.
COMMANDS: dict[str, tuple[str, str]] = {
    "detect": ("runtime.commands.detect", "run a model on images, folders or a video and print detections"),
    "bench": ("runtime.commands.bench", "measure init, invoke latency per thread count, peak RSS (or the pipeline)"),
    "run": ("runtime.commands.run", "the daemon: camera -> detections -> events, within budgets"),
    "events": ("runtime.commands.events", "list, filter, follow and export the local event log"),
    "config": ("runtime.commands.config", "check a config file without starting (config check)"),
    "status": ("runtime.commands.status", "the running daemon's health, model and figures"),
    "monitor": ("runtime.commands.monitor", "live memory, power, temperature figures and budget state"),
    "activate": ("runtime.commands.activate", "on a board: switch to a staged bundle, wait for health, roll back on failure"),
    "deploy": ("runtime.commands.deploy", "roll a bundle out to one or many boards over ssh"),
}
# Workstation commands, installed by other packages under the entry-point group below
# (pyproject.toml declares the converter's): listed here for --help only.
PLUGIN_GROUP = "edgewatch.commands"
WORKSTATION_COMMANDS = {
    "convert": "turn a trained model into a quantized, measured bundle (workstation)",
    "report": "print or plot a bundle's conversion report (workstation)",
}


class OneLineErrors(argparse.ArgumentParser):
    """A bad argument is one line naming it (`edgewatch run: error: argument --duration: ...`) and
    exit 2; `--help` shows the usage."""

    def error(self, message: str):
        self.exit(exitcodes.BAD_INPUT, f"{self.prog}: error: {message} (see --help)\n")


def _usage() -> str:
    helps = {**{name: h for name, (_, h) in COMMANDS.items()}, **WORKSTATION_COMMANDS}
    width = max(map(len, helps))
    lines = ["usage: edgewatch COMMAND [options]   (edgewatch COMMAND --help)", "", "commands:"]
    lines += [f"  {name:<{width}}  {help_}" for name, help_ in helps.items()]
    return "\n".join(lines)


def _plugin_module(name: str) -> str | None:
    from importlib.metadata import entry_points

    found = entry_points(group=PLUGIN_GROUP, name=name)
    return next(iter(found)).value if found else None


def _expected_errors() -> tuple[type[BaseException], ...]:
    from .bundle import BundleError
    from .decoders import DecoderError
    from .events import EventLogError
    from .interpreter import ModelError
    from .table import SchemaError

    return (BundleError, DecoderError, EventLogError, ModelError, SchemaError)


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ("-h", "--help"):
        print(_usage())
        return exitcodes.OK if argv else exitcodes.BAD_INPUT
    if argv[0] == "--version":
        print(f"edgewatch {__version__}")
        return exitcodes.OK
    name = argv[0]
    if name in COMMANDS:
        module_name, help_ = COMMANDS[name]
    elif name in WORKSTATION_COMMANDS:
        module_name, help_ = _plugin_module(name), WORKSTATION_COMMANDS[name]
        if module_name is None:
            print(f"edgewatch {name}: error: not installed here (a workstation command: pip install 'edgewatch[convert]')", file=sys.stderr)
            return exitcodes.FAILURE
    else:
        print(f"edgewatch: error: unknown command {name!r}\n\n{_usage()}", file=sys.stderr)
        return exitcodes.BAD_INPUT
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        hint = " (install the workstation extra: pip install 'edgewatch[convert]')" if name in WORKSTATION_COMMANDS else ""
        print(f"edgewatch {name}: error: cannot load ({exc}){hint}", file=sys.stderr)
        return exitcodes.FAILURE
    parser = OneLineErrors(prog=f"edgewatch {name}", description=help_)
    parser.add_argument("-v", "--verbose", action="count", default=0, help="more log output (-vv for debug)")
    module.add_arguments(parser)
    args = parser.parse_args(argv[1:])
    logging.basicConfig(
        level=logging.WARNING - 10 * min(args.verbose, 2),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    try:
        return int(module.run(args) or 0)
    except CommandError as exc:
        print(f"edgewatch {name}: error: {exc}", file=sys.stderr)
        return exc.code
    except _expected_errors() as exc:
        print(f"edgewatch {name}: error: {exc}", file=sys.stderr)
        return exitcodes.BAD_INPUT
    except KeyboardInterrupt:
        return exitcodes.INTERRUPTED
    except BrokenPipeError:  # `edgewatch detect ... | head`
        sys.stderr.close()
        return exitcodes.OK


if __name__ == "__main__":  # pragma: no cover - `python -m runtime.cli`; the same module as the entry point
    from runtime.cli import main as entry

    sys.exit(entry())
