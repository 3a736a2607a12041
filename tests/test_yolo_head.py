"""Recognising YOLO heads by shape and metadata, and the one-line refusals (no TensorFlow needed)."""

import pytest

from converters.errors import SourceError
from converters.yolo.head import looks_like_detector, recognise


def test_layouts_by_shape():
    assert recognise("m.onnx", {"output0": (1, 6, 8400)}, (640, 640), {}, None).layout == "v8"
    assert recognise("m.onnx", {"output0": (1, 84, 2100)}, (320, 320), {}, None).num_classes == 80
    assert recognise("m.onnx", {"output0": (1, 25200, 85)}, (640, 640), {}, None).layout == "v5"
    # [1, N, 6]: v5 with one class when N is 3 anchors per grid point, else end-to-end
    assert recognise("m.onnx", {"output0": (1, 25200, 6)}, (640, 640), {}, None).layout == "v5"
    assert recognise("m.onnx", {"output0": (1, 300, 6)}, (640, 640), {}, None).layout == "end2end"
    assert recognise("m.onnx", {"output0": (1, 8400, 6)}, (640, 640), {"end2end": True}, None).layout == "end2end"


def test_not_a_detector_stays_raw():
    assert recognise("m.onnx", {"logits": (1, 1000)}, (224, 224), {}, None) is None
    assert recognise("m.onnx", {"output0": (1, 6, 8400)}, (640, 640), {}, "raw") is None


def test_detector_not_recognised_names_the_option():
    with pytest.raises(SourceError, match=r"m.onnx: looks like a detector .*pass --decoder"):
        recognise("m.onnx", {"a": (1, 4, 8400), "b": (1, 2, 8400)}, (640, 640), {}, None)
    with pytest.raises(SourceError, match=r"pass --decoder yolo-v5 or --decoder yolo-end2end"):
        recognise("m.onnx", {"output0": (1, 8400, 6)}, (640, 640), {}, None)
    assert looks_like_detector({"output0": (1, 10, 10)}, {"task": "detect"})


def test_wrong_decoder_is_one_line_with_the_right_one():
    with pytest.raises(SourceError) as info:
        recognise("m.onnx", {"output0": (1, 6, 8400)}, (640, 640), {}, "yolo-v5")
    message = str(info.value)
    assert "\n" not in message
    assert "--decoder yolo-v5" in message and "[1, 6, 8400]" in message and "pass --decoder yolo-v8" in message
    assert recognise("m.onnx", {"output0": (1, 6, 8400)}, (640, 640), {}, "yolo-v8").layout == "v8"
