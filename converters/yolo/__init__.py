"""Ultralytics YOLO sources: the head recognised (head.py), cut for int8 (cut.py), decoded as
Ultralytics decodes it (source.py)."""
