"""The converter's two failures, each a one-line message naming the file and the cause.

`SourceError`: the input is wrong (unreadable model, missing calibration folder, bad option):
fix the input and retry (exit `BAD_INPUT`). `ConversionError`: the input was readable but could not
be turned into a working TFLite model (unsupported op, converter crash): exit `CONVERSION_FAILED`.
"""


class SourceError(ValueError):
    """Bad input: a model, calibration source or option the converter cannot use."""


class ConversionError(RuntimeError):
    """A readable model that TFLite conversion or verification could not complete."""
