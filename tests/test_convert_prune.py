"""Pruning and distillation on real networks: the SSDLite person graph on vtest.avi, and the tiny
Keras model of test_convert_keras (its fixtures are shared through this module's imports)."""

import contextlib
import io
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from conftest import WAIT_S
from runtime import exitcodes
from runtime.cli import main
from test_convert_keras import convert_terminated_at, photos, previous_bundle, tiny_model  # noqa: F401 - fixtures

pytestmark = pytest.mark.convert
tf = pytest.importorskip("tensorflow")
REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def person_network(ssdlite_graph, tmp_path_factory):
    from converters.compress.network import FrozenNetwork
    from converters.sources import load_source

    source = load_source(ssdlite_graph, tmp_path_factory.mktemp("work"))
    return source, FrozenNetwork.of(source.function, ssdlite_graph)


@pytest.mark.parametrize("method", ["global", "layer", "random"])
def test_pruning_zeroes_the_fraction_asked_and_leaves_the_rest_bit_identical(person_network, method):
    from converters.compress.prune import apply, masks

    _, network = person_network
    dense = network.values()
    assert len(dense) > 40 and all(k.shape[2] != 3 for k in dense.values())  # the first layer is not among them
    keep = masks(dense, method, 0.7)
    pruned = apply(dense, keep)
    n = sum(k.size for k in dense.values())
    zeroed = sum(int((~m).sum()) for m in keep.values())
    assert abs(zeroed / n - 0.7) <= 0.01
    for name, k in dense.items():
        assert np.all(pruned[name][~keep[name]] == 0)
        assert np.array_equal(pruned[name][keep[name]].view(np.uint32), k[keep[name]].view(np.uint32))
        if method != "global":  # each kernel at the sparsity itself
            assert abs((~keep[name]).mean() - 0.7) <= 1 / k.size + 1e-9
    if method == "global":  # the smallest magnitudes overall went
        kept = np.concatenate([np.abs(k[keep[name]]) for name, k in dense.items()])
        gone = np.concatenate([np.abs(k[~keep[name]]) for name, k in dense.items()])
        assert gone.max() <= kept.min()


def test_the_pruned_network_runs_with_its_new_weights(person_network):
    """The rebuilt function really computes with the replaced kernels (and unchanged ones give the
    source's outputs exactly)."""
    source, network = person_network
    x = tf.constant(np.random.default_rng(0).uniform(-1, 1, (1, 300, 300, 3)).astype(np.float32))
    same, _ = network.function(network.values())
    np.testing.assert_allclose(same(x)["scores"].numpy(), source.function(x)["scores"].numpy(), atol=1e-5)
    zero, _ = network.function({k: np.zeros_like(v) for k, v in network.values().items()})
    assert not np.allclose(zero(x)["scores"].numpy(), source.function(x)["scores"].numpy(), atol=0.1)


def test_narrowing_removes_each_blocks_least_important_channels(person_network):
    source, network = person_network
    blocks = network.blocks()
    assert len(blocks) >= 16  # MobileNetV2's inverted residuals and SSDLite's extra layers
    x = tf.constant(np.random.default_rng(1).uniform(-1, 1, (1, 300, 300, 3)).astype(np.float32))
    activity = network.channel_activity([x.numpy()])
    same, removed = network.narrowed(0.0, activity)
    assert removed == 0
    np.testing.assert_allclose(same.function(same.values())[0](x)["scores"].numpy(), source.function(x)["scores"].numpy(), atol=1e-5)
    half, removed = network.narrowed(0.5, activity)
    before, after = network.values(), half.values()
    for b in blocks:  # every block's expand kernel (a Const behind the Conv2D) has half its output channels
        name = next(k for k in before if k.startswith(b.expand.rsplit("/", 1)[0]))
        assert after[name].shape[3] == round(before[name].shape[3] * 0.5)
    assert 0.3 < removed / network.weights < 0.6 and half.weights == network.weights - removed
    out = half.function(half.values())[0](x)
    assert out["scores"].shape == source.function(x)["scores"].shape  # nothing outside the blocks changed shape


def test_channels_dropped_are_the_ones_the_others_make_up_and_the_project_is_refitted():
    """On pixels whose channels are partly redundant: the selection drops a near-constant channel
    (its mean goes to the bias) and one of two near-copies, and the refitted project weights give
    the block's output back where the kept channels' own weights do not."""
    from converters.compress.network import ChannelStats

    rng = np.random.default_rng(3)
    x = rng.normal(size=(5000, 8))
    x[:, 7] = x[:, 0] + 0.01 * rng.normal(size=5000)  # a near-copy of channel 0
    x[:, 6] = 4.0 + 0.001 * rng.normal(size=5000)  # near-constant
    x[:, 5] = 0.7 * x[:, 1] + 0.3 * x[:, 2]  # carried by others, but not whole by any one of them
    weights = rng.normal(size=(8, 3))
    stats = ChannelStats(x.mean(axis=0), np.cov(x, rowvar=False, bias=True))
    keep = stats.select(weights, 5)
    assert 6 not in keep and 5 not in keep and len({0, 7} & set(keep)) == 1
    np.testing.assert_allclose(stats.refit(weights, np.arange(8)), weights, atol=1e-12)  # keeping all changes nothing

    def error(kept_weights):
        centred = x - x.mean(axis=0)
        return np.linalg.norm(centred[:, keep] @ kept_weights - centred @ weights) / np.linalg.norm(centred @ weights)

    assert error(stats.refit(weights, keep)) < 0.02 < 0.1 < error(weights[keep])


@pytest.fixture(scope="module")
def person_pruned(ssdlite_graph, vtest_avi, tmp_path_factory):
    out = tmp_path_factory.mktemp("bundles") / "person"
    buf = io.StringIO()
    with contextlib.redirect_stdout(buf):
        code = main(["convert", str(ssdlite_graph), "-o", str(out), "--calibration", str(vtest_avi), "--samples", "12",
                     "--held-out", "8", "--runs", "3", "--quiet", "--json", "--prune", "--prune-methods", "layer,random,channel",
                     "--sparsities", "0.5", "--distill-steps", "12", "--min-fidelity", "0"])
    assert code == exitcodes.OK
    return json.loads(buf.getvalue()), out


def test_distillation_lowers_its_held_out_loss_and_raises_fidelity(person_pruned):
    report, _ = person_pruned
    points = {p["method"]: p for p in report["pruning"]["points"]}
    assert list(points) == ["layer", "random", "channel"]
    for p in points.values():
        loss = p["distill"]["held_out_loss"]
        assert p["distill"]["steps"] == 12 and loss["after"] < loss["before"]
        assert 0.35 < p["sparsity_total"] < 0.5 and p["compression"] > 1.5
    layer = points["layer"]
    assert layer["fidelity_distilled"]["value"] > layer["fidelity_pruned"]["value"]
    # magnitude beats chance at the same sparsity
    assert points["random"]["fidelity_pruned"]["value"] < layer["fidelity_pruned"]["value"]


def test_the_chosen_point_ships_stored_sparse_and_runs_without_tensorflow(person_pruned):
    report, out = person_pruned
    chosen = {c["name"]: c for c in report["pruning"]["chosen"]}
    assert chosen["pruned50"]["method"] == "layer" and chosen["pruned50"]["sparsity"] == 0.5
    rows = {v["name"]: v for v in report["variants"]}
    pruned = rows["pruned50-int8"]
    assert not pruned["sparse"]["xnnpack_sparse_possible"]  # int8, and a detector's graph
    # stored sparse only where that is smaller (at 50% an int8 weight costs less than its index)
    assert pruned["size_bytes"] <= rows["int8"]["size_bytes"] * 1.01
    if pruned["shipped"]:
        assert (out / pruned["file"]).is_file()
        manifest = json.loads((out / "model.json").read_text())
        assert "pruned50-int8" in [v["name"] for v in manifest["variants"]]
        code = ("import sys, cv2; from runtime.detector import Detector, DetectorOptions; "
                f"d = Detector.create_from_options(DetectorOptions(model={str(out)!r}, variant='pruned50-int8')); "
                "frame = cv2.imread(sys.argv[1]) if len(sys.argv) > 1 else None; "
                "import numpy as np; d.detect(np.zeros((576, 768, 3), np.uint8)); "
                "assert 'tensorflow' not in sys.modules; print('ok')")
        run = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=WAIT_S)
        assert run.stdout.strip() == "ok", run.stderr
    else:
        assert pruned["dropped"] and pruned["file"] is None


def test_the_narrowed_network_ships_as_a_smaller_model(person_pruned):
    report, out = person_pruned
    chosen = {c["name"]: c for c in report["pruning"]["chosen"]}
    assert chosen["channels50"]["method"] == "channel"
    rows = {v["name"]: v for v in report["variants"]}
    narrow = rows["channels50-int8"]
    assert narrow["size_bytes"] < 0.8 * rows["int8"]["size_bytes"]  # half the expanded channels: fewer weights, not zeros
    assert narrow["fidelity"]["value"] is not None and narrow["input_size"] == rows["int8"]["input_size"]
    # half the channels gone and the projects refitted: it still finds people before any distillation
    point = next(p for p in report["pruning"]["points"] if p["method"] == "channel")
    assert point["fidelity_pruned"]["value"] > 0.5


def test_the_report_draws_the_compression_chart(person_pruned, tmp_path, capsys):
    report, out = person_pruned
    assert main(["report", str(out)]) == exitcodes.OK
    text = capsys.readouterr().out
    header = next(line for line in text.splitlines() if line.startswith("method"))
    assert header.split()[:3] == ["method", "sparsity", "of"] and "pruned50: the sparsest zeroing point" in text
    assert main(["report", str(out), "--plot", str(tmp_path / "chart.png")]) == exitcodes.OK
    assert (tmp_path / "chart.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def _keras(capsys, source, out, calibration, *extra):
    capsys.readouterr()
    code = main(["convert", str(source), "-o", str(out), "--calibration", str(calibration), "--samples", "4", "--held-out", "4",
                 "--runs", "3", "--quiet", "--json", "--quantize", "none", *extra])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_keras_distillation_fits_the_source_outputs(tiny_model, photos, tmp_path, capsys):  # noqa: F811
    _, folder = tiny_model
    code, out, err = _keras(capsys, folder / "tiny.keras", tmp_path / "b", photos, "--prune", "--prune-methods", "layer",
                            "--sparsities", "0.8", "--distill-steps", "40", "--min-fidelity", "0.5")
    assert code == exitcodes.OK, err
    point = json.loads(out)["pruning"]["points"][0]
    assert point["fidelity_pruned"]["metric"] == "cosine"
    assert point["distill"]["held_out_loss"]["after"] < point["distill"]["held_out_loss"]["before"]


def test_a_source_without_convolutions_to_prune_gets_one_line(photos, tmp_path, capsys):  # noqa: F811
    keras = tf.keras
    inputs = keras.Input((32, 32, 3))
    first = keras.layers.Conv2D(4, 3)(inputs)  # reads the image: kept dense, so nothing is left to prune
    model = keras.Model(inputs, keras.layers.Dense(2)(keras.layers.GlobalAveragePooling2D()(first)))
    model.save(tmp_path / "flat.keras")
    code, out, err = _keras(capsys, tmp_path / "flat.keras", tmp_path / "b", photos, "--prune")
    assert code == exitcodes.BAD_INPUT and out == ""
    why = "cannot be pruned: it has no convolution kernels to prune (only Conv2D weights are)"
    assert err.strip() == f"edgewatch convert: error: {tmp_path / 'flat.keras'}: {why}"
    assert not (tmp_path / "b").exists()
    code, _, err = _keras(capsys, tmp_path / "flat.keras", tmp_path / "b", photos, "--sparsities", "0.5")
    assert code == exitcodes.BAD_INPUT and "--sparsities needs --prune" in err


def test_channel_pruning_is_skipped_where_the_network_has_no_blocks_unless_asked(tiny_model, photos, tmp_path, capsys):  # noqa: F811
    _, folder = tiny_model  # plain convolutions: nothing of MobileNetV2's expand -> depthwise -> project
    code, out, err = _keras(capsys, folder / "tiny.keras", tmp_path / "b", photos, "--prune", "--sparsities", "0.5",
                            "--distill-steps", "0", "--min-fidelity", "0")
    assert code == exitcodes.OK, err
    pruning = json.loads(out)["pruning"]
    assert [p["method"] for p in pruning["points"]] == ["global", "layer", "random"]
    assert "channel pruning skipped" in pruning["why"] and all("fidelity_distilled" not in p for p in pruning["points"])
    code, out, err = _keras(capsys, folder / "tiny.keras", tmp_path / "c", photos, "--prune", "--prune-methods", "channel")
    assert code == exitcodes.BAD_INPUT and out == "" and len(err.strip().splitlines()) == 1
    assert "cannot be pruned by channels" in err and not (tmp_path / "c").exists()


def test_interrupted_distillation_leaves_the_previous_bundle(tiny_model, photos, tmp_path):  # noqa: F811
    _, folder = tiny_model
    target = previous_bundle(tmp_path)
    _, err, code = convert_terminated_at(["convert", str(folder / "tiny.keras"), "-o", str(target), "--calibration", str(photos),
                                          "--samples", "4", "--held-out", "4", "--prune", "--prune-methods", "layer",
                                          "--sparsities", "0.5", "--distill-steps", "100000"], "distilling")
    assert code == exitcodes.INTERRUPTED, err
    assert err.strip().splitlines()[-1] == f"edgewatch convert: error: interrupted by SIGTERM; nothing written, {target} unchanged"
    assert sorted(p.name for p in target.iterdir()) == ["model.json", "model.tflite"]
    assert (target / "model.tflite").read_bytes() == b"previous"
    assert [p.name for p in tmp_path.iterdir()] == ["bundle"]
