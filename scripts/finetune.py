#!/usr/bin/env python3
"""Fine-tune the reranker on feedback pairs and export it as a model directory rerank-mcp serves.

End to end:

    rerank-mcp feedback export --format jsonl --out train.jsonl
    pip install -r scripts/requirements-finetune.txt
    python scripts/finetune.py --data train.jsonl --out models/my-reranker
    rerank-mcp --model models/my-reranker      # or send SIGHUP to a server already pointed at that dir

--data holds (query, document, label) rows with the columns sentence_0, sentence_1 and label
(JSON Lines or CSV). The distinct queries are split into train and held-out sets (a query's pairs
stay on one side); MRR@10 and NDCG@10 on the held-out queries are printed before and after
training and written to <out>/metrics.json. The trained sentence-transformers CrossEncoder is
saved to --out, exported to onnx/model.onnx (fp32) and onnx/model_quantized.onnx (dynamic int8),
and the fp32 graph is checked against CrossEncoder.predict on held-out pairs (exit 1 on mismatch).
"""
import argparse
import csv
import inspect
import io
import json
import math
import os
import random
import sys
import tempfile

COLUMNS = ("sentence_0", "sentence_1", "label")
FP32_TOLERANCE = 1e-4


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", required=True, help="feedback export: .jsonl or .csv with sentence_0, sentence_1, label")
    p.add_argument("--base", default="cross-encoder/ms-marco-MiniLM-L6-v2", help="base checkpoint: local dir or HF id (%(default)s)")
    p.add_argument("--out", required=True, help="output model directory")
    p.add_argument("--lr", type=float, default=5e-5, help="learning rate (%(default)s)")
    p.add_argument("--batch-size", type=int, default=16, help="training batch size (%(default)s)")
    p.add_argument("--epochs", type=float, default=1, help="training epochs (%(default)s)")
    p.add_argument("--seed", type=int, default=42, help="seed for the split, shuffling and initialisation (%(default)s)")
    p.add_argument("--warmup-ratio", type=float, default=0.0, help="share of steps with linear LR warmup, in [0, 1) (%(default)s)")
    p.add_argument("--max-length", type=int, default=None, help="max tokens per pair (default: the model's)")
    p.add_argument("--eval-fraction", type=float, default=0.2, help="share of distinct queries held out, 0 for none (%(default)s)")
    p.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto", help="auto (default): cuda when available, else cpu")
    return p.parse_args(argv)


def load_pairs(path):
    """Rows of (query, document, label) from JSON Lines or CSV, told apart by extension or first character."""
    with open(path, encoding="utf-8-sig", newline="") as f:  # raw: line breaks inside fields stay as written
        text = f.read()
    ext, head = os.path.splitext(path)[1].lower(), text.lstrip()[:1]
    if head == "[" and ext != ".csv":
        records = json.loads(text)
    elif ext in (".jsonl", ".ndjson", ".json") or (ext != ".csv" and head == "{"):
        records = [json.loads(line) for line in text.split("\n") if line.strip()]  # not splitlines: U+2028 is data
    else:
        records = list(csv.DictReader(io.StringIO(text, newline="")))
    rows = []
    for n, rec in enumerate(records, 1):
        missing = [c for c in COLUMNS if c not in rec]
        if missing:
            sys.exit(f"{path}: row {n} lacks column(s) {', '.join(missing)} (expected {', '.join(COLUMNS)})")
        try:
            rows.append((str(rec["sentence_0"]), str(rec["sentence_1"]), float(rec["label"])))
        except (TypeError, ValueError):
            sys.exit(f"{path}: row {n}: label {rec['label']!r} is not a number")
    if not rows:
        sys.exit(f"{path}: no rows")
    return rows


def split_by_query(rows, fraction, seed):
    """Hold out a seeded random share of the distinct queries, with all of their pairs."""
    queries = sorted({q for q, _, _ in rows})
    random.Random(seed).shuffle(queries)
    n_eval = 0
    if fraction > 0 and len(queries) >= 2:
        n_eval = min(max(1, round(len(queries) * fraction)), len(queries) - 1)
    held = set(queries[:n_eval])
    return [r for r in rows if r[0] not in held], [r for r in rows if r[0] in held]


def ranking_metrics(rows, scores, k=10):
    """Mean MRR@k (relevant: label >= 0.5) and NDCG@k (gain: the label) over the queries in rows."""
    by_query = {}
    for (q, _, label), s in zip(rows, scores):
        by_query.setdefault(q, []).append((float(s), label))
    mrrs, ndcgs = [], []
    for items in by_query.values():
        ranked = [label for _, label in sorted(items, key=lambda x: -x[0])][:k]
        if any(label >= 0.5 for _, label in items):
            mrrs.append(next((1.0 / (i + 1) for i, label in enumerate(ranked) if label >= 0.5), 0.0))
        ideal = sorted((label for _, label in items), reverse=True)[:k]
        idcg = sum(g / math.log2(i + 2) for i, g in enumerate(ideal))
        if idcg > 0:
            ndcgs.append(sum(g / math.log2(i + 2) for i, g in enumerate(ranked)) / idcg)
    return {"mrr@10": _mean(mrrs), "ndcg@10": _mean(ndcgs), "queries": len(by_query)}


def _mean(xs):
    return sum(xs) / len(xs) if xs else None


def main(argv=None):
    args = parse_args(argv)
    if not 0 <= args.warmup_ratio < 1 or not 0 <= args.eval_fraction < 1:
        sys.exit("--warmup-ratio and --eval-fraction must be in [0, 1)")
    rows = load_pairs(args.data)
    train_rows, eval_rows = split_by_query(rows, args.eval_fraction, args.seed)
    print(f"{len(rows)} pairs: {len(train_rows)} train, {len(eval_rows)} held out "
          f"({len({r[0] for r in eval_rows})} of {len({r[0] for r in rows})} queries)")

    try:
        import numpy as np
        import onnxruntime as ort
        import torch
        from datasets import Dataset
        from onnxruntime.quantization import QuantType, quantize_dynamic
        from sentence_transformers import __version__ as st_version
        from sentence_transformers.cross_encoder import CrossEncoder, CrossEncoderTrainer, CrossEncoderTrainingArguments
        from sentence_transformers.cross_encoder.losses import BinaryCrossEntropyLoss
        from transformers import __version__ as tf_version, set_seed
    except ImportError as err:
        sys.exit(f"{err}: install the dependencies with pip install -r scripts/requirements-finetune.txt")

    if args.device == "cuda" and not torch.cuda.is_available():
        sys.exit("--device cuda: no CUDA device is available")
    device = args.device if args.device != "auto" else ("cuda" if torch.cuda.is_available() else "cpu")
    set_seed(args.seed)
    model = CrossEncoder(args.base, num_labels=1, max_length=args.max_length, device=device,
                         local_files_only=os.path.isdir(args.base))
    tok, hf = model.tokenizer, model.model
    max_len = min(tok.model_max_length, getattr(hf.config, "max_position_embeddings", None) or tok.model_max_length)
    if args.max_length:
        max_len = min(max_len, args.max_length)
    tok.model_max_length = max_len
    act = model.activation_fn  # captured now: sentence-transformers 4.0 predict(activation_fn=...) replaces it
    act_name = f"{type(act).__module__}.{type(act).__qualname__}"

    def logits_of(rs):  # raw logits (activation Identity), as the ONNX graph returns them
        pairs = [[q, d] for q, d, _ in rs]
        return model.predict(pairs, activation_fn=torch.nn.Identity(), batch_size=32, show_progress_bar=False)

    print(f"base {args.base}: device {device}, max length {max_len}, activation {act_name}")

    metrics = {"base": args.base, "train_pairs": len(train_rows), "eval_pairs": len(eval_rows), "max_length": max_len,
               "activation_fn": act_name, "args": vars(args)}
    if eval_rows:
        metrics["before"] = ranking_metrics(eval_rows, logits_of(eval_rows))

    # Training: BCE on logits, one label. Transformers 5 takes the warmup ratio as a float warmup_steps (< 1) and
    # drops warmup_ratio (5.2); 4.x only knows warmup_ratio.
    transformers_5 = int(tf_version.split(".")[0]) >= 5
    warmup = {"warmup_steps" if transformers_5 else "warmup_ratio": args.warmup_ratio}
    train_ds = Dataset.from_dict({c: [r[i] for r in train_rows] for i, c in enumerate(COLUMNS)})
    with tempfile.TemporaryDirectory() as scratch:
        training_args = CrossEncoderTrainingArguments(
            output_dir=scratch, num_train_epochs=args.epochs, per_device_train_batch_size=args.batch_size,
            learning_rate=args.lr, seed=args.seed, save_strategy="no", report_to="none", logging_steps=50,
            use_cpu=(device == "cpu"), **warmup)
        CrossEncoderTrainer(model=model, args=training_args, train_dataset=train_ds,
                            loss=BinaryCrossEntropyLoss(model)).train()
    if eval_rows:
        metrics["after"] = ranking_metrics(eval_rows, logits_of(eval_rows))

    # Save: sentence-transformers layout plus what the server reads (config.json's activation, model_max_length).
    out = os.path.abspath(args.out)
    onnx_dir = os.path.join(out, "onnx")
    os.makedirs(onnx_dir, exist_ok=True)
    model.activation_fn = act
    model.to("cpu")
    model.eval()
    hf = model.model
    model.save_pretrained(out)
    tok.save_pretrained(out)
    patch_json(os.path.join(out, "config.json"), lambda c: c.setdefault("sentence_transformers", {}).update(
        {"activation_fn": act_name, "version": st_version}))
    if os.path.exists(os.path.join(out, "tokenizer_config.json")):
        patch_json(os.path.join(out, "tokenizer_config.json"), lambda c: c.update({"model_max_length": max_len}))

    # ONNX export: the HF classifier alone, logits [batch, 1], dynamic batch and sequence axes.
    names = ["input_ids", "attention_mask"] + (["token_type_ids"] if "token_type_ids" in tok.model_input_names else [])
    check_rows = (eval_rows or train_rows)[:16]
    sample = tok(["a short query", "another, slightly longer query"], ["a document", "a second, longer document to pad"],
                 padding=True, truncation=True, max_length=max_len, return_tensors="pt")

    class Logits(torch.nn.Module):
        def __init__(self, inner):
            super().__init__()
            self.inner = inner

        def forward(self, input_ids, attention_mask, token_type_ids=None):
            extra = {} if token_type_ids is None else {"token_type_ids": token_type_ids}
            return self.inner(input_ids=input_ids, attention_mask=attention_mask, return_dict=True, **extra).logits

    fp32_path, int8_path = os.path.join(onnx_dir, "model.onnx"), os.path.join(onnx_dir, "model_quantized.onnx")
    # The TorchScript exporter reads dynamic_axes; torch >= 2.9 defaults to the dynamo one, so ask for it by name.
    export_kwargs = {"dynamo": False} if "dynamo" in inspect.signature(torch.onnx.export).parameters else {}
    with torch.no_grad():
        torch.onnx.export(Logits(hf.eval()), tuple(sample[n] for n in names), fp32_path, input_names=names,
                          output_names=["logits"], opset_version=17, do_constant_folding=True,
                          dynamic_axes={**{n: {0: "batch", 1: "sequence"} for n in names}, "logits": {0: "batch"}},
                          **export_kwargs)
    quantize_dynamic(fp32_path, int8_path, weight_type=QuantType.QInt8)

    # Verify: onnxruntime on held-out pairs (one padded batch, and one pair alone) against CrossEncoder.predict.
    expected = np.asarray(logits_of(check_rows), dtype=np.float32).reshape(-1)

    def ort_logits(path, rs):
        sess = ort.InferenceSession(path, providers=["CPUExecutionProvider"])
        enc = tok([q for q, _, _ in rs], [d for _, d, _ in rs], padding=True, truncation=True,
                  max_length=max_len, return_tensors="np")
        out_ = sess.run(["logits"], {i.name: enc[i.name].astype(np.int64) for i in sess.get_inputs()})[0]
        if out_.shape != (len(rs), 1):
            sys.exit(f"{path}: logits shape {out_.shape}, expected ({len(rs)}, 1)")
        return out_.reshape(-1)

    fp32_diff = float(np.max(np.abs(ort_logits(fp32_path, check_rows) - expected)))
    fp32_diff = max(fp32_diff, float(abs(ort_logits(fp32_path, check_rows[:1])[0] - expected[0])))
    int8_diff = float(np.max(np.abs(ort_logits(int8_path, check_rows) - expected)))
    metrics["onnx"] = {"pairs_checked": len(check_rows), "fp32_max_abs_diff": fp32_diff, "int8_max_abs_diff": int8_diff,
                       "inputs": names, "opset": 17}
    with open(os.path.join(out, "metrics.json"), "w", encoding="utf-8") as f:
        json.dump(metrics, f, indent=2)

    if eval_rows:
        def fmt(v):
            return "n/a" if v is None else f"{v:.4f}"

        print(f"\nheld-out queries: {metrics['before']['queries']}\n{'metric':<9} {'before':>7} {'after':>7}")
        for key in ("mrr@10", "ndcg@10"):
            print(f"{key.upper():<9} {fmt(metrics['before'][key]):>7} {fmt(metrics['after'][key]):>7}")
    else:
        print("\nno held-out queries: metrics skipped")
    print(f"\nONNX vs CrossEncoder.predict on {len(check_rows)} pairs: fp32 max |diff| {fp32_diff:.2e}, "
          f"int8 max |diff| {int8_diff:.2e}")
    if not fp32_diff <= FP32_TOLERANCE:
        print(f"FAIL: fp32 ONNX differs from PyTorch by more than {FP32_TOLERANCE}", file=sys.stderr)
        return 1
    print(f"model written to {out}")
    return 0


def patch_json(path, edit):
    with open(path, encoding="utf-8") as f:
        data = json.load(f)
    edit(data)
    with open(path, "w", encoding="utf-8") as f:
        json.dump(data, f, indent=2)
        f.write("\n")


if __name__ == "__main__":
    sys.exit(main())
