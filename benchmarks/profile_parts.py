"""Per-part timing of one training pass (graph mode, no XLA), for ``train_speed --profile``.

Each part is its own ``tf.function`` run over the same batches (after a warm-up pass);
the parts are differences of cumulative stages, in seconds per pass:

    encoder             encoder (embedding + GRU loop) forward
    sampling_loop       scheduled sampling's forward-only step loop choosing the fed tokens
    decoder             the rest of the forward pass (teacher-forced decoder, attention, logits)
    loss                masked cross-entropy
    backward            gradients of everything above
    optimizer_and_fit   Adam update, metrics and fit's per-step overhead (full step - above)
"""

import time

import tensorflow as tf

P_SAMPLING = 0.9  # any p < 1 exercises the scheduled-sampling path


def _pass(fn, batches):
    start = time.perf_counter()
    for (src, tgt_in), tgt_out in batches:
        tf.nest.map_structure(lambda t: t.numpy(), fn(tf.constant(src), tf.constant(tgt_in), tf.constant(tgt_out)))
    return time.perf_counter() - start


def _stages(model, loss_fn, forward):
    def encoder(s, ti, to):
        return tf.nest.flatten(model.encode(s))[0] if hasattr(model, "encode") else s

    def fwd(s, ti, to):
        return forward(s, ti)

    def fwd_loss(s, ti, to):
        return loss_fn(to, forward(s, ti))

    def fwd_bwd(s, ti, to):
        with tf.GradientTape() as tape:
            loss = loss_fn(to, forward(s, ti))
        grads = tape.gradient(loss, model.trainable_variables)
        return [tf.convert_to_tensor(g) for g in grads if g is not None]

    return {"encoder": encoder, "forward": fwd, "forward_loss": fwd_loss, "forward_backward": fwd_bwd}


def profile(models, batches, args, step_seconds=None):
    """{config: {part: seconds per pass}} for the non-XLA configurations present."""
    from train_speed import timed_pass

    result = {}
    for name in ("peer", "tf", "ss"):
        if name not in models:
            continue
        model = models[name]
        if name == "peer":
            forward = lambda s, ti, m=model: m((s, ti), training=True)  # noqa: E731
        elif name == "tf":
            forward = lambda s, ti, m=model: m((s, ti), training=True)  # noqa: E731
        else:
            forward = lambda s, ti, m=model: m((s, ti, tf.constant(P_SAMPLING)), training=True)  # noqa: E731
        stages = _stages(model, lambda y, p, m=model: m.loss(y, p), forward)
        if name == "ss":
            def sampling(s, ti, to, m=model):
                memory, mask, state = m.encode(s, True)
                return m.decoder.sampled_inputs(ti, state, memory, mask, tf.constant(P_SAMPLING),
                                                seed=m.seed_generator)
            stages = {"encoder": stages["encoder"], "encoder_sampling": lambda s, ti, to: (
                sampling(s, ti, to)), **{k: v for k, v in stages.items() if k != "encoder"}}
        seconds = {}
        for stage, fn in stages.items():
            fn = tf.function(fn)
            _pass(fn, batches)  # trace + warm-up
            seconds[stage] = min(_pass(fn, batches) for _ in range(2))
        full = min(timed_pass(model, batches) for _ in range(2))
        parts = {"encoder": seconds["encoder"]}
        before = seconds["encoder"]
        if "encoder_sampling" in seconds:
            parts["sampling_loop"] = seconds["encoder_sampling"] - before
            before = seconds["encoder_sampling"]
        parts["decoder"] = seconds["forward"] - before
        parts["loss"] = seconds["forward_loss"] - seconds["forward"]
        parts["backward"] = seconds["forward_backward"] - seconds["forward_loss"]
        parts["optimizer_and_fit"] = full - seconds["forward_backward"]
        parts["full_step_pass"] = full
        result[name] = {k: round(v, 3) for k, v in parts.items()}
    return result
