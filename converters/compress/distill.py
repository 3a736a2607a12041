"""Distillation: a pruned network fine-tuned to reproduce the source network's own raw outputs.

No labels: the source model is the teacher, on the user's own calibration frames; held-out frames
(which training never sees) tell whether it generalised. The pruned weights stay zero (the mask is
applied again after every step).

The loss compares raw outputs before decoding. For an SSD head: box encodings by squared error,
each anchor weighted by the teacher's confidence that it holds an object (plus a floor, so that
empty anchors still count a little); class scores by the divergence of the student's
probabilities from the teacher's (binary per class for sigmoid scores, KL for softmax), which is
zero when they agree. Any other output: squared error scaled by the teacher's own spread.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Callable

import numpy as np

from ..progress import Progress

BOX_WEIGHT_FLOOR = 0.01
LEARNING_RATE = 1e-3
# For a network that starts near the teacher (channels removed and the projects refitted: its
# held-out loss a tenth of a zeroed one's at the same sparsity). Adam's steps are about the rate
# whatever the gradient, so the rate for a far start throws a near one off before it helps
# (measured: channels at 50 %, 100 steps, 0.930 at 1e-3 and 0.945 at 3e-4).
NEAR_LEARNING_RATE = 3e-4
BATCH = 4


@dataclass
class DistillResult:
    values: dict[str, np.ndarray]
    steps: int
    seconds: float
    loss_before: float  # on the held-out frames
    loss_after: float

    def to_json(self) -> dict:
        return {"steps": self.steps, "seconds": round(self.seconds, 1),
                "held_out_loss": {"before": round(self.loss_before, 5), "after": round(self.loss_after, 5)}}


def loss_function(head) -> Callable:
    """(student outputs, teacher outputs) -> scalar loss, for this source's head (None: not a detector)."""
    import tensorflow as tf

    params = head.params if head is not None else {}
    score = params.get("score") if head is not None and head.decoder == "ssd_anchors" else None
    background = bool(params.get("background_class", False))

    def spread(t):
        return tf.math.reduce_variance(t) + 1e-6

    def ssd(student: dict, teacher: dict):
        t_logits, s_logits = teacher["scores"], student["scores"]
        if score == "softmax":
            p = tf.nn.softmax(t_logits)
            classes = tf.reduce_mean(tf.reduce_sum(p * (tf.math.log(p + 1e-9) - tf.nn.log_softmax(s_logits)), -1))
        else:  # sigmoid: per-class binary divergence (cross-entropy less the teacher's own entropy)
            p = tf.sigmoid(t_logits)
            classes = tf.reduce_mean(tf.nn.sigmoid_cross_entropy_with_logits(labels=p, logits=s_logits)
                                     - tf.nn.sigmoid_cross_entropy_with_logits(labels=p, logits=t_logits))
        foreground = p[..., 1:] if background else p
        weight = tf.reduce_max(foreground, axis=-1) + BOX_WEIGHT_FLOOR  # [1, anchors]
        per_anchor = tf.reduce_mean(tf.square(student["boxes"] - teacher["boxes"]), -1)
        boxes = tf.reduce_sum(weight * per_anchor) / tf.reduce_sum(weight)
        return boxes + classes

    def generic(student: dict, teacher: dict):
        terms = [tf.reduce_mean(tf.square(student[k] - teacher[k])) / spread(teacher[k]) for k in teacher]
        return tf.add_n(terms) / len(terms)

    return ssd if score in ("sigmoid", "softmax") else generic


def examples(teacher, inputs: list[np.ndarray]) -> list[tuple]:
    """(input, the teacher's outputs) per preprocessed float32 input, as tensors: computed once
    for a whole sweep, since the teacher is the same for every point."""
    import tensorflow as tf

    out = []
    for x in inputs:
        tensor = tf.constant(x)
        out.append((tensor, {k: tf.constant(v) for k, v in teacher(tensor).items()}))
    return out


def distill(network, values: dict[str, np.ndarray], keep: dict[str, np.ndarray], loss,
            train: list[tuple], held_out: list[tuple], *, steps: int, seconds: float | None,
            progress: Progress, label: str, seed: int = 0, learning_rate: float = LEARNING_RATE) -> DistillResult:
    """Fine-tunes `values` (the pruned kernels of `network`, a FrozenNetwork) towards the
    teacher's outputs in `train` (examples()); at most `steps` steps of BATCH frames, and no step
    started after `seconds`."""
    import tensorflow as tf

    run, variables = network.trainable(values)
    names = list(variables)
    # only kernels with zeros need them kept: a narrowed network has none
    masks = {n: tf.constant(keep[n].astype(np.float32)) for n in names if not keep[n].all()}

    def held_out_loss() -> float:
        return float(np.mean([float(loss(run(x), t)) for x, t in held_out]))

    before = held_out_loss()
    optimizer = tf.keras.optimizers.Adam(learning_rate)
    trainable = [variables[n] for n in names]
    rng = np.random.default_rng(seed)
    order: list[int] = []
    t0 = time.monotonic()
    progress.step(f"distilling {label}: {steps} steps of {BATCH} frames", steps)
    done = 0
    for step in range(steps):
        if seconds is not None and time.monotonic() - t0 >= seconds:
            break
        if len(order) < BATCH:
            order += list(rng.permutation(len(train)))
        batch, order = order[:BATCH], order[BATCH:]
        with tf.GradientTape() as tape:
            value = tf.add_n([loss(run(train[i][0]), train[i][1]) for i in batch]) / len(batch)
        grads = tape.gradient(value, trainable)
        optimizer.apply_gradients(zip(grads, trainable))
        for n, mask in masks.items():
            variables[n].assign(variables[n] * mask)
        done = step + 1
        progress.update(done, f"loss {float(value):.4f}")
    after = held_out_loss()
    return DistillResult({n: variables[n].numpy() for n in names}, done, time.monotonic() - t0, before, after)
