"""The motion stage: a cheap look at a small grey copy of each frame decides which frames (and
which parts of them) the model sees. detector.py finds what moved (downscale.py, background.py,
mask.py); gate.py decides what goes to the model; regions.py plans crops around small motion."""

from .detector import Motion, MotionDetector
from .gate import Decision, Gate, GateStats
from .mask import MaskError, MotionMask, load_mask

__all__ = ["Decision", "Gate", "GateStats", "MaskError", "Motion", "MotionDetector", "MotionMask", "load_mask"]
