"""The conversion report: a table for a person, the gate for scripts.

`report.json` (written into the bundle) is the whole record; `--json` prints the same object. Its
stable core, which scripts may rely on: `{"variants": [{"name", "quantization", "size_bytes",
"size_ratio", "latency_ms", "threads", "fidelity": {"metric": "map50" | "cosine", "value"}}]}`.
Each variant also says its `input_size` and which variant dominates it on latency, file size and
memory (`dominated_by`, frontier.py); `sizes` lists the input sizes asked for, and why any of them
was not built.
"""

from __future__ import annotations

from .frontier import mark


def fidelity_text(f: dict) -> str:
    if f["value"] is None:
        return f"{f['metric']} n/a"
    text = f"{f['metric']} {f['value']:.4f}"
    if f.get("snr_db") is not None:
        text += f" ({f['snr_db']:.1f} dB)"
    return text


def table(report: dict) -> str:
    if any("dominated_by" not in v for v in report["variants"]):
        mark(report["variants"])  # a report written before the frontier was
    head = ("variant", "input", "quant", "io", "size MB", "ratio", "ms p50 (min)", "cpu ms", "thr", "rss MB", "fidelity",
            "frontier", "float ops", "convert s", "shipped")
    rows = [head]
    for v in report["variants"]:
        float_ops = v.get("float_ops")
        size = v.get("input_size")
        rows.append((
            v["name"], "x".join(map(str, size)) if size else "", v["quantization"], v.get("io_type", ""),
            f"{v['size_bytes'] / 1e6:.2f}" + (" *" if v.get("shares_file_of") else ""), f"{v['size_ratio']:.3f}",
            f"{v['latency_ms']:.1f} ({v.get('latency_min_ms', v['latency_ms']):.1f})", f"{v.get('cpu_ms', 0):.1f}", str(v["threads"]),
            "-" if v.get("peak_rss_mb") is None else f"{v['peak_rss_mb']:.0f}", fidelity_text(v["fidelity"]),
            _frontier_text(v),
            "-" if float_ops is None else (", ".join(f"{k}x{n}" for k, n in float_ops.items()) or "none"),
            f"{v.get('convert_seconds', 0):.1f}", "yes" if v.get("shipped", True) else "no",
        ))
    widths = [max(len(r[i]) for r in rows) for i in range(len(head))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip() for r in rows]
    lines.insert(1, "  ".join("-" * w for w in widths))
    src = report.get("source", {})
    samples = report.get("samples", {})
    lines.append("")
    lines.append(f"source: {src.get('file')} ({src.get('format')}); held-out samples: {samples.get('held_out')}, "
                 f"calibration samples: {samples.get('calibration')} from {samples.get('path')}")
    lines.append(f"fidelity against {report.get('fidelity_reference')}"
                 + (", at its own input size for every variant" if len(report.get("sizes", {}).get("asked", [])) > 1 else ""))
    if any(v.get("shares_file_of") for v in report["variants"]):
        lines.append("* one file whose input size is free serves this variant (the runtime resizes it): no extra size on disk")
    lines.append("frontier: the costs (latency, file size, memory) on which no other variant is as accurate and cheaper")
    for s in report.get("sizes", {}).get("asked", []):
        if not s["built"]:
            lines.append(f"size {s['size'][0]}x{s['size'][1]} not built: {s['why']}")
    for v in report["variants"]:
        if v.get("dropped"):
            lines.append(f"{v['name']} not shipped: {v['dropped']}")
        if v.get("sparse"):
            lines.append(f"{v['name']}: {v['sparse']['why']}")
    if report.get("pruning"):
        lines += ["", pruning_table(report["pruning"])]
    return "\n".join(lines)


def _frontier_text(v: dict) -> str:
    dominated = v.get("dominated_by")
    if dominated is None:
        return ""
    on = [short for axis, short in (("latency", "lat"), ("size", "size"), ("memory", "mem")) if not dominated.get(axis)]
    return ",".join(on) if on else f"none ({dominated['latency']} beats it)"


def below(report: dict, minimum: float) -> list[str]:
    """Variants whose fidelity is under `minimum` (or could not be measured); a pruned variant
    already left out of the bundle for it does not count."""
    return [v["name"] for v in report["variants"]
            if not v.get("dropped") and (v["fidelity"]["value"] is None or v["fidelity"]["value"] < minimum)]


def pruning_table(pruning: dict) -> str:
    """The sweep: per method and sparsity, compression and fidelity before and after distillation."""
    rows = [("method", "sparsity", "of all weights", "compression", "fidelity pruned", "distilled", "distil steps", "s",
             "held-out loss")]
    for p in pruning["points"]:
        d = p.get("distill") or {}
        loss = d.get("held_out_loss")
        rows.append((p["method"], f"{p['sparsity']:.0%}", f"{p['sparsity_total']:.1%}", f"{p['compression']:.2f}x",
                     fidelity_text(p["fidelity_pruned"]),
                     fidelity_text(p["fidelity_distilled"]) if "fidelity_distilled" in p else "-",
                     str(d.get("steps", "-")), f"{d['seconds']:.0f}" if d else "-",
                     f"{loss['before']:.4f} -> {loss['after']:.4f}" if loss else "-"))
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip() for r in rows]
    lines.insert(1, "  ".join("-" * w for w in widths))
    w = pruning["weights"]
    lines.append("")
    lines.append(f"pruned: {w['prunable']:,} Conv2D weights; kept dense: {w['first_layer']:,} in the first layer, "
                 f"{w['other']:,} others (depthwise, biases, normalisation); compression: the source's weights / those left (non-zero, not removed)")
    lines.append(f"shipped: {pruning['why']}")
    return "\n".join(lines)
