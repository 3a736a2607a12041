"""The real-time pipeline: capture thread -> latest-frame slot -> one inference at a time ->
filters -> tracker -> events. `Pipeline` is also the resource monitor's actuator."""

from .pipeline import Pipeline

__all__ = ["Pipeline"]
