#!/usr/bin/env python3
"""Fine-tune the reranker on feedback pairs and export it as a model directory rerank-mcp serves.

`rerank-mcp finetune` runs this script: it builds the training set and the held-out rerank calls from
the feedback database and passes them as --train and --eval. Run by hand:

    pip install -r python/requirements-finetune.txt
    python python/finetune.py --data train.jsonl --out models/my-reranker

--train / --data hold (query, document, label) rows with the columns sentence_0, sentence_1 and label
(JSON Lines or CSV). --eval holds held-out rerank calls, one JSON object per line:
{"query", "documents": [...], "labels": [...]}, each call ranked over all of its candidates. With
--data alone, a seeded share of the distinct queries is held out instead (a query's pairs stay on one
side). MRR@10, NDCG@10, Recall@1 and Recall@5 on the held-out calls are computed before and after
training and written to <out>/metrics.json. --epochs 0 without data only exports the base.
--served DIR also ranks the held-out calls with the model DIR serves now (its PyTorch checkpoint when it
has one, else its ONNX file): metrics.json's "served", what `rerank-mcp finetune --promote-to` gates on.

The trained CrossEncoder is saved to --out (config.json, model.safetensors, tokenizer files: the
checkpoint the next fine-tune starts from), exported to onnx/model.onnx (fp32) and
onnx/model_quantized.onnx (dynamic int8), and the fp32 graph is checked against CrossEncoder.predict
(exit 1 on mismatch).

Decoder rerankers (a Qwen3ForSequenceClassification such as Qwen3-Reranker-seq-cls, a
Qwen2ForSequenceClassification such as mxbai-rerank-v2-seq) are trained and evaluated inside the
prompt the server puts them in (--prompt-template, default auto: chosen from config.json as the
server chooses it), so the fine-tuned model sees at serving time what it was trained on.
ModernBERT and other encoders train on raw pairs.
"""
import argparse
import csv
import inspect
import io
import json
import math
import os
import random
import re
import sys
import tempfile

COLUMNS = ("sentence_0", "sentence_1", "label")
FP32_TOLERANCE = 1e-4


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", help="feedback export: .jsonl or .csv with sentence_0, sentence_1, label; held out by query")
    p.add_argument("--train", help="training rows (as --data), all of them trained on")
    p.add_argument("--eval", help="held-out rerank calls: JSON Lines of {query, documents, labels}")
    p.add_argument("--base", default="cross-encoder/ms-marco-MiniLM-L6-v2", help="base checkpoint: local dir or HF id (%(default)s)")
    p.add_argument("--out", required=True, help="output model directory")
    p.add_argument("--served", help="model directory served now: also evaluated on the held-out calls (metrics.json: served)")
    p.add_argument("--lr", type=float, default=5e-5, help="learning rate (%(default)s)")
    p.add_argument("--batch-size", type=int, default=16, help="training batch size (%(default)s)")
    p.add_argument("--epochs", type=float, default=1, help="training epochs (%(default)s)")
    p.add_argument("--seed", type=int, default=42, help="seed for the split, shuffling and initialisation (%(default)s)")
    p.add_argument("--warmup-ratio", type=float, default=0.0, help="share of steps with linear LR warmup, in [0, 1) (%(default)s)")
    p.add_argument("--max-length", type=int, default=None, help="max tokens per pair (default: the model's)")
    p.add_argument("--eval-fraction", type=float, default=0.2, help="share of distinct queries held out, 0 for none (%(default)s)")
    p.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto", help="auto (default): cuda when available, else cpu")
    p.add_argument("--prompt-template", choices=("auto", "none", "qwen3-reranker", "mxbai-rerank-v2"), default="auto",
                   help="prompt pairs are trained in; auto (default): by config.json, as rerank-mcp serves it")
    p.add_argument("--fuse", choices=("auto", "on", "off"), default="auto",
                   help="ONNX Runtime's transformer fusions into onnx/model_fused.onnx (BERT, Qwen2/Qwen3): auto (default) = "
                        "kept only when faster on this CPU with logits within 1e-4; on = kept whenever the logits agree; off = none")
    p.add_argument("--exit-with-parent", action="store_true",
                   help="exit as soon as stdin reaches its end: rerank-mcp finetune passes it with a pipe it holds open, "
                        "so a parent killed even by SIGKILL (which it cannot forward) takes this process with it")
    return p.parse_args(argv)


def exit_with_parent():
    """Reads stdin on a daemon thread; at its end (the parent's end of the pipe closed: the parent is gone) exits at once.

    A SIGKILLed parent forwards no signal and a process group is not killed with it; the kernel closing the
    pipe is the one thing that happens whatever way the parent dies. os._exit: training threads are not joined.
    """
    import threading

    def watch():
        # os.read, not sys.stdin: a thread blocked inside the buffered reader holds its lock, and the
        # interpreter's shutdown then aborts ("could not acquire lock for <stdin>") after a normal run.
        try:
            while os.read(0, 4096):
                pass
        except OSError:
            pass
        try:
            print("finetune: the parent rerank-mcp process is gone (stdin closed); stopping", file=sys.stderr, flush=True)
        except (OSError, ValueError):
            pass  # its stderr pipe went with it
        os._exit(1)

    threading.Thread(target=watch, name="exit-with-parent", daemon=True).start()


# The prompts of src/tokenizer/prompt-template.ts, as sentence pairs: the prompt before the document goes
# with the query, the rest with the document (for byte-level BPE models a pair is plain concatenation).
QWEN3_PREFIX = ('<|im_start|>system\nJudge whether the Document meets the requirements based on the Query and the Instruct '
                'provided. Note that the answer can only be "yes" or "no".<|im_end|>\n<|im_start|>user\n')
QWEN3_SUFFIX = "<|im_end|>\n<|im_start|>assistant\n<think>\n\n</think>\n\n"
QWEN3_INSTRUCTION = "Given a web search query, retrieve relevant passages that answer the query"
MXBAI_PREFIX = "<|im_start|>system\nYou are Qwen, created by Alibaba Cloud. You are a helpful assistant.<|im_end|>\n<|im_start|>user\n"
MXBAI_TASK = ("You are a search relevance expert who evaluates how well documents match search queries. For each query-document "
              "pair, carefully analyze the semantic relationship between them, then provide your binary relevance judgment "
              "(0 for not relevant, 1 for relevant).\nRelevance:")
MXBAI_SUFFIX = "<|im_end|>\n<|im_start|>assistant\n"


def prompt_template_for(setting, config):
    if setting != "auto":
        return setting
    seq_cls = any(a.endswith("ForSequenceClassification") for a in (getattr(config, "architectures", None) or []))
    if seq_cls and config.model_type == "qwen3":
        return "qwen3-reranker"
    if seq_cls and config.model_type == "qwen2":
        return "mxbai-rerank-v2"
    return "none"


def prompted(template, query, document):
    if template == "qwen3-reranker":
        return [f"{QWEN3_PREFIX}<Instruct>: {QWEN3_INSTRUCTION}\n<Query>: {query}\n", f"<Document>: {document}{QWEN3_SUFFIX}"]
    if template == "mxbai-rerank-v2":
        return [f"{MXBAI_PREFIX}query: {query}", f"\ndocument: {document}\n{MXBAI_TASK}{MXBAI_SUFFIX}"]
    return [query, document]


FORMULA_GUARD = re.compile(r"^''*[=+\-@\t\r]")


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
        # `feedback export --format csv` puts one ' before a cell a spreadsheet would run as a formula.
        for rec in records:
            for col in ("sentence_0", "sentence_1"):
                if isinstance(rec.get(col), str) and FORMULA_GUARD.match(rec[col]):
                    rec[col] = rec[col][1:]
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


def groups_of(rows):
    """Rows grouped by query, in first-seen order: each group is ranked as one call."""
    by_query = {}
    for q, d, label in rows:
        g = by_query.setdefault(q, {"query": q, "documents": [], "labels": []})
        g["documents"].append(d)
        g["labels"].append(label)
    return list(by_query.values())


def load_groups(path):
    groups = []
    with open(path, encoding="utf-8") as f:
        for n, line in enumerate(f.read().split("\n"), 1):
            if not line.strip():
                continue
            g = json.loads(line)
            if len(g.get("documents", [])) != len(g.get("labels", [])) or not g.get("documents"):
                sys.exit(f"{path}: line {n}: documents and labels must be non-empty lists of one length")
            groups.append({"query": str(g["query"]), "documents": [str(d) for d in g["documents"]],
                           "labels": [float(x) for x in g["labels"]]})
    return groups


def ranking_metrics(groups, scores, k=10):
    """Means over the groups with a relevant document (label >= 0.5) of MRR@k, NDCG@k (gain: the label),
    Recall@1 and Recall@5. Ties keep input order, as the server's rerank does."""
    mrrs, ndcgs, r1, r5 = [], [], [], []
    for g, s in zip(groups, scores):
        labels = g["labels"]
        if not any(label >= 0.5 for label in labels):
            continue
        order = sorted(range(len(labels)), key=lambda i: (-float(s[i]), i))
        ranked = [labels[i] for i in order]
        mrrs.append(next((1.0 / (i + 1) for i, label in enumerate(ranked[:k]) if label >= 0.5), 0.0))
        ideal = sorted(labels, reverse=True)[:k]
        idcg = sum(g_ / math.log2(i + 2) for i, g_ in enumerate(ideal))
        ndcgs.append(sum(g_ / math.log2(i + 2) for i, g_ in enumerate(ranked[:k])) / idcg)
        relevant = sum(1 for label in labels if label >= 0.5)
        r1.append(sum(1 for label in ranked[:1] if label >= 0.5) / relevant)
        r5.append(sum(1 for label in ranked[:5] if label >= 0.5) / relevant)
    return {"mrr@10": _mean(mrrs), "ndcg@10": _mean(ndcgs), "recall@1": _mean(r1), "recall@5": _mean(r5),
            "queries": len({g["query"] for g in groups}), "calls": len(mrrs)}


def _mean(xs):
    return sum(xs) / len(xs) if xs else None


def main(argv=None):
    args = parse_args(argv)
    if args.exit_with_parent:
        exit_with_parent()
    if not 0 <= args.warmup_ratio < 1 or not 0 <= args.eval_fraction < 1:
        sys.exit("--warmup-ratio and --eval-fraction must be in [0, 1)")
    if args.data and (args.train or args.eval):
        sys.exit("--data splits its own held-out queries: give either --data or --train/--eval")
    if args.data:
        train_rows, eval_rows = split_by_query(load_pairs(args.data), args.eval_fraction, args.seed)
        eval_groups = groups_of(eval_rows)
    else:
        train_rows = load_pairs(args.train) if args.train else []
        eval_groups = load_groups(args.eval) if args.eval else []
    if not train_rows and args.epochs > 0:
        sys.exit("no training rows: give --data or --train, or --epochs 0 to export the base only")
    print(f"{len(train_rows)} training pairs, {len(eval_groups)} held-out calls "
          f"({len({g['query'] for g in eval_groups})} queries)", flush=True)

    try:
        import numpy as np
        import onnxruntime as ort
        import torch
        from datasets import Dataset
        from sentence_transformers import __version__ as st_version
        from sentence_transformers.cross_encoder import CrossEncoder, CrossEncoderTrainer, CrossEncoderTrainingArguments
        from sentence_transformers.cross_encoder.losses import BinaryCrossEntropyLoss
        from transformers import __version__ as tf_version, set_seed
    except ImportError as err:
        req = os.path.join(os.path.dirname(os.path.abspath(__file__)), "requirements-finetune.txt")
        sys.exit(f"{err}: install the dependencies with pip install -r {req}")

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
    template = prompt_template_for(args.prompt_template, hf.config)
    act = model.activation_fn  # captured now: sentence-transformers 4.0 predict(activation_fn=...) replaces it
    act_name = f"{type(act).__module__}.{type(act).__qualname__}"

    def logits_of(rs):  # raw logits (activation Identity), as the ONNX graph returns them
        pairs = [prompted(template, q, d) for q, d, _ in rs]
        if not pairs:
            return []
        return model.predict(pairs, activation_fn=torch.nn.Identity(), batch_size=32, show_progress_bar=False)

    eval_rows = [(g["query"], d, label) for g in eval_groups for d, label in zip(g["documents"], g["labels"])]

    def eval_scores():  # per group, the logits of its documents
        flat, out_, i = list(logits_of(eval_rows)), [], 0
        for g in eval_groups:
            out_.append(flat[i:i + len(g["documents"])])
            i += len(g["documents"])
        return out_

    print(f"base {args.base}: device {device}, max length {max_len}, activation {act_name}, prompt template {template}", flush=True)

    metrics = {"base": args.base, "train_pairs": len(train_rows), "eval_pairs": len(eval_rows), "max_length": max_len,
               "activation_fn": act_name, "prompt_template": template, "args": vars(args)}
    if eval_groups:
        metrics["before"] = ranking_metrics(eval_groups, eval_scores())
        print(f"before: {json.dumps(metrics['before'])}", flush=True)
    if eval_groups and args.served:
        served_logits = served_scorer(args.served, device, args.max_length, CrossEncoder, torch, np, ort)
        flat, served_groups, i = list(served_logits([(q, d) for q, d, _ in eval_rows])), [], 0
        for g in eval_groups:
            served_groups.append(flat[i:i + len(g["documents"])])
            i += len(g["documents"])
        metrics["served"] = ranking_metrics(eval_groups, served_groups)
        metrics["served_dir"] = os.path.abspath(args.served)
        print(f"served ({args.served}): {json.dumps(metrics['served'])}", flush=True)

    # Training: BCE on logits, one label. Transformers 5 takes the warmup ratio as a float warmup_steps (< 1) and
    # drops warmup_ratio (5.2); 4.x only knows warmup_ratio.
    transformers_5 = int(tf_version.split(".")[0]) >= 5
    warmup = {"warmup_steps" if transformers_5 else "warmup_ratio": args.warmup_ratio}
    if args.epochs > 0:
        rows = [(*prompted(template, q, d), label) for q, d, label in train_rows]
        train_ds = Dataset.from_dict({c: [r[i] for r in rows] for i, c in enumerate(COLUMNS)})
        with tempfile.TemporaryDirectory() as scratch:
            training_args = CrossEncoderTrainingArguments(
                output_dir=scratch, num_train_epochs=args.epochs, per_device_train_batch_size=args.batch_size,
                learning_rate=args.lr, seed=args.seed, save_strategy="no", report_to="none", logging_steps=50,
                use_cpu=(device == "cpu"), disable_tqdm=True, **warmup)
            CrossEncoderTrainer(model=model, args=training_args, train_dataset=train_ds,
                                loss=BinaryCrossEntropyLoss(model)).train()
    if eval_groups:
        metrics["after"] = ranking_metrics(eval_groups, eval_scores())
        print(f"after: {json.dumps(metrics['after'])}", flush=True)

    # Save: sentence-transformers layout plus what the server reads (config.json's activation, model_max_length).
    out = os.path.abspath(args.out)
    onnx_dir = os.path.join(out, "onnx")
    os.makedirs(onnx_dir, exist_ok=True)
    model.activation_fn = act
    model.to("cpu")
    model.eval()
    hf = model.model
    model.save_pretrained(out, create_model_card=False)
    tok.save_pretrained(out)
    patch_json(os.path.join(out, "config.json"), lambda c: c.setdefault("sentence_transformers", {}).update(
        {"activation_fn": act_name, "version": st_version}))
    if os.path.exists(os.path.join(out, "tokenizer_config.json")):
        patch_json(os.path.join(out, "tokenizer_config.json"), lambda c: c.update({"model_max_length": max_len}))

    # ONNX export: the HF classifier alone, logits [batch, 1], dynamic batch and sequence axes.
    names = ["input_ids", "attention_mask"] + (["token_type_ids"] if "token_type_ids" in tok.model_input_names else [])
    check_rows = (eval_rows or train_rows or [("a short query", "a document", 0.0),
                                              ("another, slightly longer query", "a second, longer document", 0.0)])[:16]
    sample = tok(["a short query", "another, slightly longer query"], ["a document", "a second, longer document to pad"],
                 padding=True, truncation=True, max_length=max_len, return_tensors="pt")

    class Logits(torch.nn.Module):
        def __init__(self, inner):
            super().__init__()
            self.inner = inner

        def forward(self, input_ids, attention_mask, token_type_ids=None):
            extra = {} if token_type_ids is None else {"token_type_ids": token_type_ids}
            if additive_mask:
                # The same logits; the (1 - mask) * min form is what ONNX Runtime's attention fusion recognises.
                dtype = self.inner.dtype
                attention_mask = (1.0 - attention_mask[:, None, None, :].to(dtype)) * torch.finfo(dtype).min
            return self.inner(input_ids=input_ids, attention_mask=attention_mask, return_dict=True, **extra).logits

    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    from fuse_graph import FUSED_FILE, fuse_if_faster, optimizer_type, remove_fused
    from quantize import quantize_int8
    # BERT encoders are exported with eager attention and an additive mask so that python/fuse_graph.py can fuse them.
    additive_mask = args.fuse != "off" and optimizer_type(hf.config.to_dict()) == "bert"
    if additive_mask:
        if hasattr(hf, "set_attn_implementation"):
            hf.set_attn_implementation("eager")
        else:
            hf.config._attn_implementation = "eager"

    fp32_path, int8_path = os.path.join(onnx_dir, "model.onnx"), os.path.join(onnx_dir, "model_quantized.onnx")
    # The TorchScript exporter reads dynamic_axes; torch >= 2.9 defaults to the dynamo one, so ask for it by name.
    export_kwargs = {"dynamo": False} if "dynamo" in inspect.signature(torch.onnx.export).parameters else {}
    with torch.no_grad():
        torch.onnx.export(Logits(hf.eval()), tuple(sample[n] for n in names), fp32_path, input_names=names,
                          output_names=["logits"], opset_version=17, do_constant_folding=True,
                          dynamic_axes={**{n: {0: "batch", 1: "sequence"} for n in names}, "logits": {0: "batch"}},
                          **export_kwargs)
    quantize_int8(fp32_path, int8_path)
    # Decoder rerankers also get the prefix-reuse graph (python/decoder_past.py); the server uses it when it is there.
    from decoder_past import PAST_FILE, export_with_past, is_decoder_reranker, quantize_past, remove_quantized_past
    past_diff = export_with_past(hf, onnx_dir) if is_decoder_reranker(hf) else None
    if past_diff is not None:
        quantize_past(onnx_dir)
    else:
        remove_quantized_past(onnx_dir)
        if os.path.exists(os.path.join(onnx_dir, PAST_FILE)):
            os.remove(os.path.join(onnx_dir, PAST_FILE))

    # ONNX Runtime's transformer fusions, written to onnx/model_fused.onnx only where they are faster here with the same logits.
    fused = fuse_if_faster(out, force=args.fuse == "on", log=lambda m: print(m, flush=True)) if args.fuse != "off" else {"kept": False, "reason": "--fuse off"}
    if args.fuse == "off":
        remove_fused(onnx_dir)

    # Verify: onnxruntime on held-out pairs (one padded batch, and one pair alone) against CrossEncoder.predict.
    expected = np.asarray(logits_of(check_rows), dtype=np.float32).reshape(-1)

    def ort_logits(path, rs):
        sess = ort.InferenceSession(path, providers=["CPUExecutionProvider"])
        pairs = [prompted(template, q, d) for q, d, _ in rs]
        enc = tok([q for q, _ in pairs], [d for _, d in pairs], padding=True, truncation=True,
                  max_length=max_len, return_tensors="np")
        out_ = sess.run(["logits"], {i.name: enc[i.name].astype(np.int64) for i in sess.get_inputs()})[0]
        if out_.shape != (len(rs), 1):
            sys.exit(f"{path}: logits shape {out_.shape}, expected ({len(rs)}, 1)")
        return out_.reshape(-1)

    fp32_diff = 0.0
    for path in [fp32_path] + ([os.path.join(onnx_dir, FUSED_FILE)] if fused["kept"] else []):
        fp32_diff = max(fp32_diff, float(np.max(np.abs(ort_logits(path, check_rows) - expected))),
                        float(abs(ort_logits(path, check_rows[:1])[0] - expected[0])))
    int8_diff = float(np.max(np.abs(ort_logits(int8_path, check_rows) - expected)))
    metrics["onnx"] = {"pairs_checked": len(check_rows), "fp32_max_abs_diff": fp32_diff, "int8_max_abs_diff": int8_diff,
                       **({"past_max_abs_diff": past_diff} if past_diff is not None else {}),
                       "fused": fused,
                       "inputs": names, "opset": 17}
    with open(os.path.join(out, "metrics.json"), "w", encoding="utf-8") as f:
        json.dump(metrics, f, indent=2)

    if eval_groups:
        def fmt(v):
            return "n/a" if v is None else f"{v:.4f}"

        served = metrics.get("served")
        print(f"\nheld-out queries: {metrics['before']['queries']}\n{'metric':<9} {'before':>7} {'after':>7}"
              + (f" {'served':>7}" if served else ""))
        for key in ("mrr@10", "ndcg@10", "recall@1", "recall@5"):
            print(f"{key.upper():<9} {fmt(metrics['before'][key]):>7} {fmt(metrics['after'][key]):>7}"
                  + (f" {fmt(served[key]):>7}" if served else ""))
    else:
        print("\nno held-out queries: metrics skipped")
    print(f"\nONNX vs CrossEncoder.predict on {len(check_rows)} pairs: fp32 max |diff| {fp32_diff:.2e}, "
          f"int8 max |diff| {int8_diff:.2e}")
    if not fp32_diff <= FP32_TOLERANCE:
        print(f"FAIL: fp32 ONNX differs from PyTorch by more than {FP32_TOLERANCE}", file=sys.stderr)
        return 1
    print(f"model written to {out}")
    return 0


def served_scorer(path, device, max_length, CrossEncoder, torch, np, ort):
    """A function from pairs to the relevance logits of the model served from `path` (label 1 minus
    label 0 for two labels, as the server ranks). The PyTorch checkpoint is used when there is one,
    so that a candidate equal to the served model scores exactly alike; else the ONNX file the
    server runs, with the directory's own tokenizer."""
    has_checkpoint = os.path.exists(os.path.join(path, "config.json")) and any(
        os.path.exists(os.path.join(path, f)) for f in ("model.safetensors", "pytorch_model.bin", "model.safetensors.index.json"))

    def relevance(logits):
        logits = np.asarray(logits, dtype=np.float64)
        if logits.ndim == 1:
            return logits
        return logits[:, 0] if logits.shape[1] == 1 else logits[:, 1] - logits[:, 0]

    if has_checkpoint:
        model = CrossEncoder(path, max_length=max_length, device=device, local_files_only=True)
        tok = model.tokenizer
        limit = min(tok.model_max_length, getattr(model.model.config, "max_position_embeddings", None) or tok.model_max_length)
        tok.model_max_length = min(limit, max_length) if max_length else limit
        return lambda pairs: relevance(model.predict([list(p) for p in pairs], activation_fn=torch.nn.Identity(),
                                                     batch_size=32, show_progress_bar=False)) if pairs else []
    from transformers import AutoConfig, AutoTokenizer
    onnx_path = next((os.path.join(path, c) for c in ("onnx/model.onnx", "model.onnx") if os.path.exists(os.path.join(path, c))), None)
    if onnx_path is None:
        sys.exit(f"--served {path}: neither a PyTorch checkpoint nor onnx/model.onnx to evaluate")
    tok = AutoTokenizer.from_pretrained(path, local_files_only=True)
    positions = getattr(AutoConfig.from_pretrained(path, local_files_only=True), "max_position_embeddings", None)
    limit = min(tok.model_max_length, positions or tok.model_max_length, max_length or 10 ** 9)
    sess = ort.InferenceSession(onnx_path, providers=["CPUExecutionProvider"])
    names = [i.name for i in sess.get_inputs()]

    def score(pairs):
        out = []
        for start in range(0, len(pairs), 32):
            batch = pairs[start:start + 32]
            enc = tok([q for q, _ in batch], [d for _, d in batch], padding=True, truncation=True, max_length=limit,
                      return_tensors="np")
            out.extend(relevance(sess.run(None, {n: enc[n].astype(np.int64) for n in names})[0]))
        return out

    return score


def patch_json(path, edit):
    with open(path, encoding="utf-8") as f:
        data = json.load(f)
    edit(data)
    with open(path, "w", encoding="utf-8") as f:
        json.dump(data, f, indent=2)
        f.write("\n")


if __name__ == "__main__":
    sys.exit(main())
