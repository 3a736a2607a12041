"""Tracking: per-frame detections in, events (with trajectories) out. See tracker.py."""

from .track import Track, TrackUpdate, new_event_id
from .tracker import Tracker, TrackerParams

__all__ = ["Track", "TrackUpdate", "Tracker", "TrackerParams", "new_event_id"]
