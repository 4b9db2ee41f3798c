"""A Qwen3-Reranker-0.6B-shaped sequence classifier with random weights, for scripts/bench-decoder.ts.

    python scripts/make_bench_decoder.py --out .cache/models/qwen3-0.6b-shape [--layers 28] [--seed 0]

The body has Qwen3-Reranker-0.6B's shape (hidden 1024, MLP 3072, 16 query / 8 key-value heads of 128,
28 layers unless --layers says fewer, for quick iterations); the tokenizer is test/fixtures/qwen3-tiny's
byte-level BPE (a 905-token vocabulary: the embedding table is small, the compute per token the same,
since a seq-cls model has no LM head). Writes onnx/model.onnx and onnx/model_past.onnx (external data), their
dynamic-int8 twins onnx/model_quantized.onnx and onnx/model_past_quantized.onnx (for --variant int8), and
bench.json: one query and 20 code chunks of 150-255 tokens inside the Qwen3-Reranker prompt.
"""
import argparse
import json
import os
import random
import shutil
import sys
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "python"))
from decoder_past import export_with_past, quantize_past  # noqa: E402
from quantize import quantize_int8  # noqa: E402

sys.path.insert(0, str(ROOT / "scripts"))
from onnx_export import export_onnx, to_external_data  # noqa: E402

TINY = ROOT / "test" / "fixtures" / "qwen3-tiny"
IDENT = "socket retry timeout handler buffer parse token index stream module config client server request response cache queue worker batch score".split()


def code_chunk(rng, words):
    lines = []
    while sum(len(l.split()) for l in lines) < words:
        name = "_".join(rng.sample(IDENT, 2))
        args = ", ".join(rng.sample(IDENT, rng.randint(1, 3)))
        body = f"    {rng.choice(IDENT)} = {rng.choice(IDENT)}.{rng.choice(IDENT)}({args})  # {' '.join(rng.sample(IDENT, 4))}"
        lines += [f"def {name}({args}):", body, f"    return {rng.choice(IDENT)}"]
    return "\n".join(lines)


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--out", required=True)
    p.add_argument("--layers", type=int, default=28)
    p.add_argument("--seed", type=int, default=0)
    a = p.parse_args()
    from transformers import PreTrainedTokenizerFast, Qwen3Config, Qwen3ForSequenceClassification
    out = Path(a.out)
    if out.exists():
        shutil.rmtree(out)
    (out / "onnx").mkdir(parents=True)
    for f in ("tokenizer.json", "tokenizer_config.json"):
        shutil.copy(TINY / f, out / f)
    tiny = json.loads((TINY / "config.json").read_text())
    torch.manual_seed(a.seed)
    config = Qwen3Config(vocab_size=tiny["vocab_size"], hidden_size=1024, intermediate_size=3072, num_hidden_layers=a.layers,
                         num_attention_heads=16, num_key_value_heads=8, head_dim=128, max_position_embeddings=40960,
                         pad_token_id=tiny["pad_token_id"], eos_token_id=tiny["eos_token_id"], num_labels=1,
                         tie_word_embeddings=False, rope_theta=1000000.0, initializer_range=0.02)
    model = Qwen3ForSequenceClassification(config).eval()
    model.save_pretrained(str(out))
    export_onnx(model, out / "onnx" / "model.onnx", vocab=800)
    to_external_data(out / "onnx" / "model.onnx")
    print(f"model_past.onnx max |dlogit| vs PyTorch: {export_with_past(model, str(out / 'onnx'), external_data=True):.2e}", flush=True)
    quantize_int8(str(out / "onnx" / "model.onnx"), str(out / "onnx" / "model_quantized.onnx"))
    quantize_past(str(out / "onnx"))

    tok = PreTrainedTokenizerFast.from_pretrained(str(out))
    rng = random.Random(a.seed)
    docs = []
    while len(docs) < 20:
        want = rng.randint(150, 255)
        text = code_chunk(rng, want // 2)
        ids = tok.encode(text, add_special_tokens=False)
        if len(ids) < 150:
            continue
        docs.append(tok.decode(ids[:want]))
    (out / "bench.json").write_text(json.dumps({"query": "where is the socket retried after a timeout, and how is the buffer parsed?", "documents": docs}, indent=1))
    print(f"{out}: {a.layers} layers, document tokens {[len(tok.encode(d, add_special_tokens=False)) for d in docs]}")


if __name__ == "__main__":
    main()
