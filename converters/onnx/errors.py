"""The one error the ONNX source raises."""

# input: the file is missing or not a valid ONNX model (bad input). unsupported_op, conversion:
# onnx2tf cannot convert it. environment: onnx2tf's venv is missing or stale.
CAUSES = ("input", "unsupported_op", "conversion", "environment")


class OnnxConversionError(ValueError):
    """One line naming the file (or the onnx2tf environment) and the cause; `cause` is one of CAUSES."""

    def __init__(self, message: str, cause: str = "conversion"):
        if cause not in CAUSES:
            raise ValueError(f"cause {cause!r} is not one of {', '.join(CAUSES)}")
        super().__init__(message)
        self.cause = cause
