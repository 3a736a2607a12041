"""The accuracy-cost frontier of a report's variants: which are worth having.

A variant is dominated on an axis (latency, file size, memory) when another variant is at least
as accurate and at most as costly there, and strictly better in one of the two: nothing would ever
step to it. Variants whose fidelity could not be measured are left out of the comparison.
"""

from __future__ import annotations

AXES = {"latency": "latency_ms", "size": "size_bytes", "memory": "peak_rss_mb"}


def dominated_by(rows: list[dict], row: dict, key: str) -> str | None:
    """The name of a variant that dominates `row` on `key`, or None."""
    mine, cost = row["fidelity"]["value"], row.get(key)
    if mine is None or cost is None:
        return None
    best = None
    for other in rows:
        theirs, their_cost = other["fidelity"]["value"], other.get(key)
        if other is row or theirs is None or their_cost is None:
            continue
        if theirs >= mine and their_cost <= cost and (theirs > mine or their_cost < cost):
            # the cheapest of the dominating ones names the better step
            if best is None or (their_cost, -theirs) < (best.get(key), -best["fidelity"]["value"]):
                best = other
    return None if best is None else best["name"]


def mark(rows: list[dict]) -> None:
    """Adds `dominated_by: {axis: name | None}` to every row."""
    for row in rows:
        row["dominated_by"] = {axis: dominated_by(rows, row, key) for axis, key in AXES.items()}


def on_frontier(row: dict, axis: str) -> bool:
    return not (row.get("dominated_by") or {}).get(axis)
