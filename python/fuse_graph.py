"""ONNX Runtime's transformer fusions on an exported cross-encoder, kept only where they pay.

    python python/fuse_graph.py MODEL_DIR [--keep-below 0.97] [--rounds 7] [--force]

onnxruntime.transformers.optimizer rewrites a BERT encoder into its fused CPU kernels (EmbedLayerNormalization,
Attention, SkipLayerNormalization, BiasGelu) and a Qwen2/Qwen3 decoder into SimplifiedLayerNormalization,
SkipSimplifiedLayerNormalization and RotaryEmbedding. ONNX Runtime's own load-time optimizer already fuses
LayerNormalization, BiasGelu and the attention MatMuls, and the projection MatMuls (77-84 % of the kernel time
in a profile) are the same either way, so the gain is small and depends on the CPU and the sequence length:
the fused graph is written to onnx/model_fused.onnx (which the server then prefers for fp32) only when its
logits agree with onnx/model.onnx within 1e-4 on padded and single-pair batches AND its median time over
back-to-back runs is below --keep-below times the plain graph's on a padded and on an unpadded batch. Otherwise nothing is written. A JSON report
(what fused, the score difference, the time ratio, kept or not and why) is printed and returned.

Two rewrites come before the optimizer, because its pattern matcher does not recognise transformers 5 graphs:
- the attention score scaling exported as Mul(QK^T, 1/sqrt(d)) becomes Div(QK^T, sqrt(d)): the matcher
  follows the first Mul parent of the mask Add, and with a Mul on both inputs it takes the wrong one;
- the head count exported as -1 in the [batch, seq, heads, head_dim] reshape becomes num_attention_heads:
  the fused Attention node needs it as a number.
The mask must be the additive (1 - mask) * min form (python/finetune.py exports BERT encoders with it).
"""
import argparse
import json
import os
import sys
import tempfile
import time

FUSED_FILE = "model_fused.onnx"
PLAIN_FILE = "model.onnx"
TOLERANCE = 1e-4
# Which of ONNX Runtime's optimizer model types fits a config.json model_type; others are left as they are.
OPTIMIZER_TYPE = {"bert": "bert", "qwen3": "qwen3", "qwen2": "qwen3"}


def optimizer_type(config):
    return OPTIMIZER_TYPE.get(config.get("model_type"))


def _const(graph, name):
    """The value of a tensor a Constant node or an initializer holds, else None."""
    from onnx import numpy_helper
    for init in graph.initializer:
        if init.name == name:
            return numpy_helper.to_array(init)
    for node in graph.node:
        if node.op_type == "Constant" and node.output[0] == name and node.attribute and node.attribute[0].HasField("t"):
            return numpy_helper.to_array(node.attribute[0].t)
    return None


def prepare_bert(model, heads):
    import numpy as np
    from onnx import numpy_helper
    g = model.graph
    producer = {o: n for n in g.node for o in n.output}
    scaled = heads_set = 0
    for node in list(g.node):
        if node.op_type == "Mul" and node.input[0] in producer and producer[node.input[0]].op_type == "MatMul":
            c = _const(g, node.input[1])
            if c is not None and c.size == 1 and 0 < float(c.reshape(-1)[0]) < 1:
                name = f"{node.name or node.output[0]}_sqrt_d"
                g.initializer.append(numpy_helper.from_array(np.asarray(1.0 / c, dtype=np.float32).reshape(c.shape), name))
                node.op_type, node.input[1] = "Div", name
                scaled += 1
        if node.op_type == "Reshape" and node.input[1] in producer and producer[node.input[1]].op_type == "Concat":
            concat = producer[node.input[1]]
            if len(concat.input) == 4:
                c = _const(g, concat.input[2])
                if c is not None and c.reshape(-1).tolist() == [-1] and _const(g, concat.input[3]) is not None:
                    name = f"{concat.name or concat.output[0]}_heads"
                    g.initializer.append(numpy_helper.from_array(np.asarray([heads], dtype=np.int64), name))
                    concat.input[2] = name
                    heads_set += 1
    return {"scalings_as_div": scaled, "head_counts_set": heads_set}


def batch_rotary_positions(model):
    """RotaryEmbedding wants position_ids [batch, seq]; a Qwen export computes them once as [1, seq]."""
    from onnx import helper
    g = model.graph
    positions = sorted({n.input[1] for n in g.node if n.op_type == "RotaryEmbedding"})
    if not positions:
        return 0
    input_ids = next(i.name for i in g.input if i.name == "input_ids")
    nodes, added = list(g.node), 0
    for pos in positions:
        shape, batched = f"{pos}_batch_shape", f"{pos}_batch"
        new = [helper.make_node("Shape", [input_ids], [shape], name=shape),
               helper.make_node("Expand", [pos, shape], [batched], name=batched)]
        at = 1 + max((i for i, n in enumerate(nodes) if pos in n.output), default=-1)
        nodes[at:at] = new
        for n in nodes:
            if n.op_type == "RotaryEmbedding" and n.input[1] == pos:
                n.input[1] = batched
        added += 1
    del g.node[:]
    g.node.extend(nodes)
    return added


def fuse(plain_path, out_path, config):
    """Writes the fused graph to out_path (where nothing is: fuse_if_faster removed an earlier one); returns what fused."""
    import onnx
    from onnxruntime.transformers.fusion_options import FusionOptions
    from onnxruntime.transformers.optimizer import optimize_model
    kind = optimizer_type(config)
    heads, hidden = int(config["num_attention_heads"]), int(config["hidden_size"])
    options = FusionOptions(kind)
    # The server feeds the tokenizer's 2-D mask; keep it as the graph's input as it is.
    options.use_raw_attention_mask(True)
    with tempfile.TemporaryDirectory(prefix="fuse-") as work:
        source, rewrites = plain_path, {}
        if kind == "bert":
            model = onnx.load(plain_path)
            rewrites = prepare_bert(model, heads)
            source = os.path.join(work, "prepared.onnx")
            onnx.save_model(model, source, save_as_external_data=True, all_tensors_to_one_file=True, location="prepared.onnx.data", size_threshold=1024)
            del model
        # The optimizer reads the prepared graph's weights into memory here, so the scratch folder can go after it.
        optimized = optimize_model(source, model_type=kind, num_heads=heads, hidden_size=hidden, opt_level=0,
                                   optimization_options=options, use_gpu=False)
    fused_ops = {k: v for k, v in optimized.get_fused_operator_statistics().items() if v}
    if kind == "qwen3":
        rewrites["rotary_positions_batched"] = batch_rotary_positions(optimized.model)
    location = os.path.basename(out_path) + ".data"
    onnx.save_model(optimized.model, out_path, save_as_external_data=True, all_tensors_to_one_file=True, location=location, size_threshold=1024)
    if os.path.getsize(os.path.join(os.path.dirname(out_path), location)) == 0:
        os.remove(os.path.join(os.path.dirname(out_path), location))
    return {"optimizer": kind, "rewrites": rewrites, "fused": fused_ops}


def remove_fused(onnx_dir):
    """A fused graph from an earlier export, or one not kept, with its weights."""
    for name in (FUSED_FILE, FUSED_FILE + ".data"):
        if os.path.exists(os.path.join(onnx_dir, name)):
            os.remove(os.path.join(onnx_dir, name))


def _session(path, threads):
    import onnxruntime as ort
    o = ort.SessionOptions()
    o.intra_op_num_threads, o.inter_op_num_threads = threads, 1
    o.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    return ort.InferenceSession(path, o, providers=["CPUExecutionProvider"])


def sample_batches(config, names, seq=256, batch=8):
    """A padded batch of random token ids (rows of decreasing length, right-padded) and one pair alone."""
    import numpy as np
    rng = np.random.default_rng(0)
    vocab = int(config.get("vocab_size", 1000))
    seq = min(seq, int(config.get("max_position_embeddings", seq)))
    ids = rng.integers(min(5, vocab - 1), vocab - 1, (batch, seq)).astype(np.int64)
    mask = np.ones_like(ids)
    for r in range(1, batch):
        cut = seq - r * seq // (2 * batch)
        mask[r, cut:] = 0
        ids[r, cut:] = int(config.get("pad_token_id") or 0)
    feeds = {"input_ids": ids, "attention_mask": mask, "token_type_ids": (np.arange(seq)[None, :] >= seq // 3).astype(np.int64).repeat(batch, 0) * mask}
    full = {k: v for k, v in feeds.items() if k in names}
    return [full, {k: v[:1, : seq // 2] for k, v in full.items()}]


def compare(plain, fused, batches):
    import numpy as np
    return max(float(np.max(np.abs(plain.run(None, b)[0] - fused.run(None, b)[0]))) for b in batches)


def paired_ratio(plain, fused, feeds, rounds):
    """Median over rounds of fused/plain, the two run back to back (order swapped each round): on a shared
    machine a neighbour's load changes both runs of a round alike, so the ratio holds where the times do not."""
    import numpy as np
    for s in (plain, fused):
        s.run(None, feeds)
    ratios, plain_times = [], []
    for r in range(rounds):
        t = {}
        for name, s in ((("plain", plain), ("fused", fused)) if r % 2 == 0 else (("fused", fused), ("plain", plain))):
            start = time.perf_counter()
            s.run(None, feeds)
            t[name] = time.perf_counter() - start
        ratios.append(t["fused"] / t["plain"])
        plain_times.append(t["plain"])
    return float(np.median(ratios)), float(np.median(plain_times))


def fuse_if_faster(model_dir, keep_below=0.97, rounds=7, threads=None, force=False, log=print):
    """Tries the fusions on MODEL_DIR/onnx/model.onnx; keeps onnx/model_fused.onnx only where it pays."""
    onnx_dir = os.path.join(model_dir, "onnx")
    plain_path, fused_path = os.path.join(onnx_dir, PLAIN_FILE), os.path.join(onnx_dir, FUSED_FILE)
    with open(os.path.join(model_dir, "config.json"), encoding="utf-8") as f:
        config = json.load(f)
    remove_fused(onnx_dir)
    if optimizer_type(config) is None:
        return {"kept": False, "reason": f"no ONNX Runtime fusions for model_type {config.get('model_type')}"}
    import numpy as np
    threads = threads or min(4, os.cpu_count() or 1)
    try:
        report = fuse(plain_path, fused_path, config)
        plain, fused = _session(plain_path, threads), _session(fused_path, threads)
    except Exception as err:  # the optimizer meets graphs it was not written for: the export stands without it
        remove_fused(onnx_dir)
        reason = f"fusion failed ({type(err).__name__}: {str(err)[:300]})"
        log(f"fusions: not kept, {reason}")
        return {"kept": False, "reason": reason}
    names = [i.name for i in plain.get_inputs()]
    batches = sample_batches(config, names)
    report["max_abs_diff"] = compare(plain, fused, batches)
    # A 0.6B decoder takes many seconds per batch of 8: time fewer rows so that the check stays within a minute or so.
    start = time.perf_counter()
    plain.run(None, batches[0])
    rows = max(2, min(8, int(8 * 1.5 / max(time.perf_counter() - start, 1e-3))))
    if rows < 8:
        batches = sample_batches(config, names, batch=rows)
        rounds = min(rounds, 5)
    # Timed on a right-padded batch (what a length-sorted queue still pads) and on the same batch unpadded.
    padded = batches[0]
    unpadded = {k: (np.ones_like(v) if k == "attention_mask" else v) for k, v in padded.items()}
    ratios = [paired_ratio(plain, fused, feeds, rounds) for feeds in (padded, unpadded)]
    report.update({"ratio": round(max(r for r, _ in ratios), 3), "ratio_padded": round(ratios[0][0], 3), "ratio_unpadded": round(ratios[1][0], 3),
                   "seconds_plain": round(ratios[0][1], 4), "batch": list(padded["input_ids"].shape), "threads": threads, "rounds": rounds})
    del plain, fused
    if not report["max_abs_diff"] <= TOLERANCE:
        report.update(kept=False, reason=f"logits differ by {report['max_abs_diff']:.2e} > {TOLERANCE}")
    elif not force and not report["ratio"] < keep_below:
        report.update(kept=False, reason=f"not faster: {report['ratio']} x the plain graph's time (keep below {keep_below})")
    else:
        report.update(kept=True, reason="forced" if force and not report["ratio"] < keep_below else "faster, same scores")
    if not report["kept"]:
        remove_fused(onnx_dir)
    log(f"fusions ({report['optimizer']}): {report['fused']}; max |dlogit| {report['max_abs_diff']:.2e}, "
        f"time {report['ratio']} x plain on {report['batch']}: {'kept ' + FUSED_FILE if report['kept'] else 'not kept, ' + report['reason']}")
    return report


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("model_dir")
    p.add_argument("--keep-below", type=float, default=0.97, help="keep the fused graph when its time is below this share of the plain graph's")
    p.add_argument("--rounds", type=int, default=7)
    p.add_argument("--threads", type=int, default=None)
    p.add_argument("--force", action="store_true", help="keep it whenever the scores agree, faster or not")
    a = p.parse_args(argv)
    report = fuse_if_faster(a.model_dir, a.keep_below, a.rounds, a.threads, a.force, log=lambda m: print(m, file=sys.stderr))
    print(json.dumps(report))
    return 0


if __name__ == "__main__":
    sys.exit(main())
