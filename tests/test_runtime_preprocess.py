"""Preprocessing: the one implementation, checked against direct formulas on real pictures."""

import numpy as np
import pytest

from runtime.detections import Detections
from runtime.preprocess import InputSpec, Preprocessor, Quantization, resize

pytestmark = pytest.mark.board  # runs on the emulated arm64 root too (deploy/arm64/check.py)


def tf1_resize_bilinear(img: np.ndarray, w: int, h: int) -> np.ndarray:
    """Reference: TF1 ResizeBilinear, align_corners=False, half_pixel_centers=False, in float."""
    H, W = img.shape[:2]
    ys = np.arange(h) * (H / h)
    xs = np.arange(w) * (W / w)
    y0 = np.floor(ys).astype(int)
    x0 = np.floor(xs).astype(int)
    y1 = np.minimum(y0 + 1, H - 1)
    x1 = np.minimum(x0 + 1, W - 1)
    ly = (ys - y0)[:, None, None]
    lx = (xs - x0)[None, :, None]
    f = img.astype(np.float64)
    top = f[y0][:, x0] * (1 - lx) + f[y0][:, x1] * lx
    bot = f[y1][:, x0] * (1 - lx) + f[y1][:, x1] * lx
    return top * (1 - ly) + bot * ly


def test_linear_legacy_matches_tf1_resize(astronaut_bgr):
    import cv2

    ours = resize(astronaut_bgr, 300, 300, "linear_legacy").astype(np.float64)
    ref = tf1_resize_bilinear(astronaut_bgr, 300, 300)
    # OpenCV interpolates with 5-bit fixed-point weights: within one grey level of the float result.
    # OpenCV 4.x (what pip pairs with numpy < 2, i.e. tflite-runtime boards) also rounds the sample
    # position to 1/32 pixel: measured up to 3.6 levels there.
    assert np.abs(ours - ref).max() <= (1.0 if int(cv2.__version__.split(".")[0]) >= 5 else 4.0)
    # and it really is the legacy grid: OpenCV's default (half-pixel) resize differs visibly
    half_pixel = resize(astronaut_bgr, 300, 300, "linear").astype(np.float64)
    assert np.abs(half_pixel - ref).mean() > 2 * np.abs(ours - ref).mean()


def test_float_normalisation_equals_formula(astronaut_bgr):
    spec = InputSpec(128, 96, color="rgb", mean=(123.675, 116.28, 103.53), std=(58.395, 57.12, 57.375))
    tensor, _ = Preprocessor(spec, np.float32)(astronaut_bgr)
    rgb = resize(astronaut_bgr, 128, 96, "linear")[:, :, ::-1].astype(np.float64)
    ref = (rgb - np.array(spec.mean)) / np.array(spec.std)
    assert tensor.shape == (1, 96, 128, 3) and tensor.dtype == np.float32
    np.testing.assert_allclose(tensor[0], ref, atol=1e-5)


def test_quantized_input_equals_quantizing_the_float(astronaut_bgr):
    spec = InputSpec(64, 64, mean=(127.5,) * 3, std=(127.5,) * 3)
    q = Quantization(scale=0.0078125, zero_point=-1)
    tensor, _ = Preprocessor(spec, np.int8, q)(astronaut_bgr)
    f, _ = Preprocessor(spec, np.float32)(astronaut_bgr)
    ref = np.clip(np.round(f.astype(np.float64) / q.scale + q.zero_point), -128, 127)
    np.testing.assert_array_equal(tensor, ref.astype(np.int8))


def test_uint8_input_matching_normalisation_is_passthrough(astronaut_bgr):
    # a 0..1 model quantized with scale 1/255, zero point 0: the pixels are already the input
    spec = InputSpec(96, 96, mean=(0.0,) * 3, std=(255.0,) * 3)
    pre = Preprocessor(spec, np.uint8, Quantization(1 / 255, 0))
    assert pre.passthrough
    tensor, _ = pre(astronaut_bgr)
    np.testing.assert_array_equal(tensor[0], resize(astronaut_bgr, 96, 96, "linear")[:, :, ::-1])
    # a mismatched quantization is not passed through
    assert not Preprocessor(spec, np.uint8, Quantization(1 / 128, 0)).passthrough
    # a -1..1 model calibrated to scale 2/255, zero point 127 is within half a step of the pixels
    minus_one_one = InputSpec(96, 96, mean=(127.5,) * 3, std=(127.5,) * 3)
    assert Preprocessor(minus_one_one, np.uint8, Quantization(2 / 255, 127)).passthrough
    assert not Preprocessor(minus_one_one, np.uint8, Quantization(2 / 255, 120)).passthrough


def test_letterbox_maps_boxes_back_to_source():
    frame = np.zeros((200, 400, 3), np.uint8)
    frame[50:150, 100:300] = 255  # a white block at x 100..300, y 50..150
    spec = InputSpec(100, 100, resize="letterbox", pad_value=0, mean=(0.0,) * 3, std=(255.0,) * 3)
    tensor, t = Preprocessor(spec, np.float32)(frame)
    # 400x200 -> 100x50, padded 25 px top and bottom
    assert (t.scale_x, t.scale_y, t.pad_x, t.pad_y) == (0.25, 0.25, 0, 25)
    rows = np.nonzero(tensor[0, :, 50, 0] > 0.5)[0]
    assert rows.min() == 25 + 12 and rows.max() == 25 + 37
    # the block in normalised input coordinates goes back to its source pixels
    block = Detections([[25 / 100, (25 + 12.5) / 100, 75 / 100, (25 + 37.5) / 100]], [1.0], [0])
    np.testing.assert_allclose(t.to_source(block).xyxy, [[100, 50, 300, 150]], atol=1e-3)


def test_grey_frames_and_grey_models(astronaut_bgr):
    import cv2

    grey = cv2.cvtColor(astronaut_bgr, cv2.COLOR_BGR2GRAY)
    colour, _ = Preprocessor(InputSpec(32, 32))(grey)
    assert colour.shape == (1, 32, 32, 3)
    mono, _ = Preprocessor(InputSpec(32, 32, color="gray", mean=(0.0,), std=(255.0,)))(astronaut_bgr)
    assert mono.shape == (1, 32, 32, 1)


def test_bad_frames_are_refused():
    pre = Preprocessor(InputSpec(32, 32))
    with pytest.raises(ValueError, match="uint8"):
        pre(np.zeros((10, 10, 3), np.float32))


@pytest.mark.parametrize("dtype,quant", [(np.float32, None), (np.uint8, Quantization(1 / 255, 0)), (np.int8, Quantization(1 / 255, -128))])
def test_nchw_is_the_nhwc_tensor_transposed(astronaut_bgr, dtype, quant):
    """An NCHW model (a LiteRT export of a PyTorch model) gets the very values an NHWC one gets."""
    spec = InputSpec(320, 256, color="rgb", resize="letterbox")
    nhwc, t1 = Preprocessor(spec, dtype, quant)(astronaut_bgr)
    nchw, t2 = Preprocessor(spec, dtype, quant, layout="nchw")(astronaut_bgr)
    assert nchw.shape == (1, 3, 256, 320) and nchw.dtype == np.dtype(dtype)
    np.testing.assert_array_equal(nchw, nhwc.transpose(0, 3, 1, 2))
    assert t1 == t2
    out = np.empty((1, 3, 256, 320), dtype)
    Preprocessor(spec, dtype, quant, layout="nchw")(astronaut_bgr, out=out)
    np.testing.assert_array_equal(out, nchw)
