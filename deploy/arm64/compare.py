"""Compare `edgewatch detect --json` outputs from two machines: same inputs, same detections?

Records are matched per input (by file name, since the paths differ between host and root) and
frame; within a frame each reference box is paired with the closest unpaired box of the same
class. The figure that matters is the largest coordinate difference in pixels.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import PurePath

Frames = dict[tuple[str, int], list[dict]]


@dataclass(frozen=True)
class Comparison:
    frames: int
    detections: int
    max_box_px: float
    max_score_diff: float
    problems: tuple[str, ...]

    def matches(self, tolerance_px: float) -> bool:
        return not self.problems and self.max_box_px <= tolerance_px


def parse_detect_json(text: str, origin: str) -> Frames:
    """One JSON object per line: {"input", "frame", "detections": [{"xyxy", "score", "label"...}]}."""
    frames: Frames = {}
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
            key = (PurePath(record["input"]).name, int(record["frame"]))
            frames[key] = list(record["detections"])
        except (ValueError, KeyError, TypeError) as exc:
            raise ValueError(f"{origin}: line {number}: not a detect --json record ({exc})") from None
    if not frames:
        raise ValueError(f"{origin}: no detect --json records")
    return frames


def _box_diff(a: dict, b: dict) -> float:
    return max(abs(float(x) - float(y)) for x, y in zip(a["xyxy"], b["xyxy"], strict=True))


def _same_class(a: dict, b: dict) -> bool:
    return (a.get("class_id"), a.get("label")) == (b.get("class_id"), b.get("label"))


def compare(reference: Frames, candidate: Frames) -> Comparison:
    problems: list[str] = []
    max_box = max_score = 0.0
    paired = 0
    for key in sorted(reference.keys() | candidate.keys()):
        name = f"{key[0]} frame {key[1]}"
        if key not in candidate or key not in reference:
            problems.append(f"{name}: only in the {'reference' if key in reference else 'candidate'}")
            continue
        ref, cand = reference[key], list(candidate[key])
        if len(ref) != len(cand):
            problems.append(f"{name}: {len(ref)} detections in the reference, {len(cand)} in the candidate")
        for r in sorted(ref, key=lambda d: -float(d["score"])):
            same = [c for c in cand if _same_class(r, c)]
            if not same:
                problems.append(f"{name}: no {r.get('label', r.get('class_id'))} to pair with {r['xyxy']}")
                continue
            best = min(same, key=lambda c: _box_diff(r, c))
            cand.remove(best)
            paired += 1
            max_box = max(max_box, _box_diff(r, best))
            max_score = max(max_score, abs(float(r["score"]) - float(best["score"])))
    return Comparison(len(reference), paired, round(max_box, 3), round(max_score, 4), tuple(problems))
