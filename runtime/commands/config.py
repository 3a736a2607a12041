"""`edgewatch config check [--config PATH]`: validate a config without starting the daemon.
`edgewatch config example`: every key with its default and documentation, as deploy/config.example.toml."""

from __future__ import annotations

import argparse

from .. import exitcodes


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("action", choices=["check", "example"],
                   help="check: validate the config and the model it names; example: print a config with every key documented")
    p.add_argument("--config", help="TOML config (default: as `edgewatch run` finds it)")
    p.add_argument("--no-model", action="store_true", help="check the config only, not that its model loads")


def run(args: argparse.Namespace) -> int:
    from .. import config, paths

    if args.action == "example":
        print(config.example_text(), end="")
        return exitcodes.OK
    path = paths.config_path(args.config)
    cfg = config.load(path)  # SchemaError: one line naming the field, exit 2
    from ..pipeline.gating import load_motion_mask

    mask = load_motion_mask(cfg.motion, cfg.origin)  # SchemaError naming the config and the mask file
    if not args.no_model:
        from ..errors import CommandError
        from ..decoders import DecoderError
        from ..pipeline.loader import load_and_test

        try:
            det = load_and_test(cfg.model)  # BundleError/ModelError: one line naming the file, exit 2
        except DecoderError as exc:
            raise CommandError(str(exc)) from None
        model = f"{det.bundle.name} ({det.variant.name}, labels: {len(det.labels)})"
        unknown = sorted(set(cfg.detect.labels) - set(det.labels))
        if unknown:
            raise CommandError(f"{cfg.origin}: detect.labels: {', '.join(map(repr, unknown))} not among the model's labels")
    else:
        model = str(cfg.model.path)
    web = cfg.web
    page = f"page on {web.host}:{web.port}" + (" (token required)" if web.token else "") if web.enabled else "page off"
    motion = ("motion off" if not cfg.motion.enabled else
              f"motion on (keep-alive {cfg.motion.keepalive_s:g} s" + (f", mask {mask.source}" if mask else "") + ")")
    print(f"ok: {cfg.origin}: camera {cfg.camera.source}, model {model}, {motion}, {page}"
          + (", budgets set" if cfg.budget is not None else ""))
    return exitcodes.OK
