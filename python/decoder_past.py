"""The second ONNX graph of a decoder reranker (Qwen3/Qwen2 ForSequenceClassification): one that
continues from cached keys and values, so the server runs the tokens every pair of a call shares
(system prompt, instruction, query) once and only each document's own tokens after them.

onnx/model_past.onnx, beside the plain graph:
  inputs   input_ids [batch, s], attention_mask [batch, p + s] (1 on the prefix and real tokens),
           position_ids [batch, s] (p, p + 1, ...), past_key_values.<i>.key / .value [1, kv_heads, p, head_dim]
           (one prefix, broadcast over the batch inside the graph)
  outputs  logits [batch, labels] (read at each row's last token that is not pad, as the plain graph),
           present.<i>.key / .value [batch, kv_heads, p + s, head_dim] (what the prefix run keeps)
A prefix run is the same graph with p = 0.
onnx/model_past_quantized.onnx (quantize_past): the same graph with dynamic int8 weights, for --variant int8.

The causal mask is built here from position_ids and attention_mask and handed to the model as a 4-D
additive mask: transformers' own mask sizes come from Python ints under tracing, which would freeze the
traced lengths into the graph.
"""
import inspect
import os

import numpy as np
import torch

PAST_FILE = "model_past.onnx"
# The int8 variant's prefix graph (served with --variant int8 beside onnx/model_quantized.onnx).
PAST_QUANTIZED_FILE = "model_past_quantized.onnx"


class WithPast(torch.nn.Module):
    def __init__(self, model):
        super().__init__()
        self.model = model
        self.layers = model.config.num_hidden_layers

    def forward(self, input_ids, attention_mask, position_ids, *past):
        from transformers import DynamicCache
        batch = input_ids.shape[0]
        cache = DynamicCache(config=self.model.config)
        for i in range(self.layers):
            cache.update(past[2 * i].expand(batch, -1, -1, -1), past[2 * i + 1].expand(batch, -1, -1, -1), i)
        # Key j is visible to a query at position q when j <= q and j is not padding.
        key_pos = torch.cumsum(torch.ones_like(attention_mask[0]), 0) - 1
        allowed = (key_pos[None, None, :] <= position_ids[:, :, None]) & attention_mask[:, None, :].bool()
        dtype = self.model.dtype
        mask = torch.where(allowed, torch.zeros((), dtype=dtype), torch.full((), torch.finfo(dtype).min, dtype=dtype))[:, None]
        out = self.model(input_ids=input_ids, attention_mask=mask, position_ids=position_ids, past_key_values=cache,
                         cache_position=position_ids[0], use_cache=True, return_dict=True)
        presents = []
        for layer in out.past_key_values.layers:
            presents += [layer.keys, layer.values]
        return (out.logits, *presents)


def io_names(layers):
    past = [f"past_key_values.{i}.{kv}" for i in range(layers) for kv in ("key", "value")]
    present = [f"present.{i}.{kv}" for i in range(layers) for kv in ("key", "value")]
    return past, present


def is_decoder_reranker(model):
    return getattr(model.config, "model_type", None) in ("qwen2", "qwen3") and \
        any(a.endswith("ForSequenceClassification") for a in (model.config.architectures or [type(model).__name__]))


def export_with_past(model, onnx_dir, external_data=None):
    """Writes onnx_dir/model_past.onnx for a Qwen2/Qwen3 sequence classifier and checks it against
    the model itself (prefix run, then a right-padded batch of suffixes); returns the worst |Δlogit|."""
    model = model.eval()
    cfg = model.config
    layers = cfg.num_hidden_layers
    kv_heads = cfg.num_key_value_heads
    head_dim = getattr(cfg, "head_dim", None) or cfg.hidden_size // cfg.num_attention_heads
    past_names, present_names = io_names(layers)
    g = torch.Generator().manual_seed(0)
    vocab = cfg.vocab_size
    p, s, b = 7, 5, 2
    ids = torch.randint(5, min(vocab, 800), (b, s), generator=g)
    mask = torch.ones(b, p + s, dtype=torch.int64)
    pos = torch.arange(p, p + s)[None].expand(b, -1).contiguous()
    past = [torch.randn(1, kv_heads, p, head_dim, generator=g) for _ in range(2 * layers)]
    path = os.path.join(onnx_dir, PAST_FILE)
    kwargs = {"dynamo": False} if "dynamo" in inspect.signature(torch.onnx.export).parameters else {}
    axes = {"input_ids": {0: "batch", 1: "sequence"}, "attention_mask": {0: "batch", 1: "total"},
            "position_ids": {0: "batch", 1: "sequence"}, "logits": {0: "batch"},
            **{n: {2: "past"} for n in past_names}, **{n: {0: "batch", 2: "total"} for n in present_names}}
    with torch.no_grad():
        torch.onnx.export(WithPast(model), (ids, mask, pos, *past), path, input_names=["input_ids", "attention_mask", "position_ids", *past_names],
                          output_names=["logits", *present_names], dynamic_axes=axes, opset_version=17, do_constant_folding=True, **kwargs)
    big = external_data if external_data is not None else os.path.getsize(path) > 1_500_000_000
    if big or external_data:
        import onnx
        m = onnx.load(path)
        onnx.save_model(m, path, save_as_external_data=True, all_tensors_to_one_file=True, location=f"{PAST_FILE}_data", size_threshold=1024)
    return check_with_past(model, path, cfg.pad_token_id)


def quantize_past(onnx_dir):
    """Writes onnx_dir/model_past_quantized.onnx from model_past.onnx with the settings finetune.py gives
    model_quantized.onnx (dynamic int8 weights), with its weights beside it when the fp32 graph's are."""
    from quantize import quantize_int8
    src, dst = os.path.join(onnx_dir, PAST_FILE), os.path.join(onnx_dir, PAST_QUANTIZED_FILE)
    remove_quantized_past(onnx_dir)
    quantize_int8(src, dst)
    return dst


def remove_quantized_past(onnx_dir):
    """A quantized prefix graph left from an earlier export would not match the new weights (the server refuses it, with a warning)."""
    for name in (PAST_QUANTIZED_FILE, f"{PAST_QUANTIZED_FILE}.data", f"{PAST_QUANTIZED_FILE}_data"):
        if os.path.exists(os.path.join(onnx_dir, name)):
            os.remove(os.path.join(onnx_dir, name))


def check_with_past(model, path, pad_token_id):
    """Prefix once, then suffixes of different lengths right-padded in one batch, against the model on each full sequence."""
    import onnxruntime as ort
    sess = ort.InferenceSession(path, providers=["CPUExecutionProvider"])
    layers = model.config.num_hidden_layers
    cfg = model.config
    kv_heads = cfg.num_key_value_heads
    head_dim = getattr(cfg, "head_dim", None) or cfg.hidden_size // cfg.num_attention_heads
    past_names, present_names = io_names(layers)
    rng = np.random.default_rng(1)
    top = min(cfg.vocab_size, 800)
    prefix = rng.integers(5, top, 11).tolist()
    suffixes = [rng.integers(5, top, n).tolist() for n in (6, 3, 9)]
    empty = {n: np.zeros((1, kv_heads, 0, head_dim), np.float32) for n in past_names}
    x = np.array([prefix], np.int64)
    presents = sess.run(present_names, {"input_ids": x, "attention_mask": np.ones_like(x), "position_ids": np.arange(len(prefix))[None], **empty})
    width = max(map(len, suffixes))
    ids = np.full((len(suffixes), width), pad_token_id, np.int64)
    mask = np.zeros((len(suffixes), len(prefix) + width), np.int64)
    mask[:, :len(prefix)] = 1
    for r, suf in enumerate(suffixes):
        ids[r, :len(suf)] = suf
        mask[r, len(prefix):len(prefix) + len(suf)] = 1
    pos = np.arange(len(prefix), len(prefix) + width)[None].repeat(len(suffixes), 0)
    got = sess.run(["logits"], {"input_ids": ids, "attention_mask": mask, "position_ids": pos, **dict(zip(past_names, presents))})[0][:, 0]
    worst = 0.0
    with torch.no_grad():
        for r, suf in enumerate(suffixes):
            t = torch.tensor([prefix + suf])
            want = float(model(input_ids=t, attention_mask=torch.ones_like(t)).logits[0][0])
            worst = max(worst, abs(want - float(got[r])))
    return worst
