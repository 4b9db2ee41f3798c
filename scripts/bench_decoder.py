"""The Python systems of scripts/bench-decoder.ts, one per process: loads once, runs the call
--repeats times and prints one JSON line {"seconds": [...], "logits": [...]} (logits in input order).

  raw-ort  onnxruntime on the same onnx/model.onnx: the Qwen3-Reranker card's process_inputs ids,
           length-sorted batches of at most 1024 tokens (pairs x longest), right-padded with the pad token
  st       sentence-transformers CrossEncoder (PyTorch) with the seq-cls card's prompt pieces around each side
"""
import argparse
import json
import time

import numpy as np

PREFIX = '<|im_start|>system\nJudge whether the Document meets the requirements based on the Query and the Instruct provided. Note that the answer can only be "yes" or "no".<|im_end|>\n<|im_start|>user\n'
SUFFIX = '<|im_end|>\n<|im_start|>assistant\n<think>\n\n</think>\n\n'
INSTRUCTION = 'Given a web search query, retrieve relevant passages that answer the query'


def decoder_rows(tok, query, docs):
    """The Qwen3-Reranker card's process_inputs ids of each (query, document) pair."""
    pre, suf = tok.encode(PREFIX, add_special_tokens=False), tok.encode(SUFFIX, add_special_tokens=False)
    return [pre + tok.encode(f"<Instruct>: {INSTRUCTION}\n<Query>: {query}\n<Document>: {d}", add_special_tokens=False) + suf for d in docs]


def run_sorted(sess, rows, pad, budget=1024, type_rows=None):
    """Logits of token-id rows in input order: length-sorted batches of at most `budget` tokens (pairs x longest),
    right-padded with `pad`; `type_rows` (an encoder's token_type_ids per row) padded with 0."""
    order = sorted(range(len(rows)), key=lambda i: len(rows[i]))
    out = [0.0] * len(rows)
    batch = []
    for i in order + [None]:
        if i is not None and (not batch or (len(batch) + 1) * len(rows[i]) <= budget):
            batch.append(i)
            continue
        width = max(len(rows[j]) for j in batch)
        ids = np.full((len(batch), width), pad, np.int64)
        mask = np.zeros_like(ids)
        for r, j in enumerate(batch):
            ids[r, :len(rows[j])] = rows[j]
            mask[r, :len(rows[j])] = 1
        feeds = {"input_ids": ids, "attention_mask": mask}
        if type_rows is not None:
            feeds["token_type_ids"] = np.zeros_like(ids)
            for r, j in enumerate(batch):
                feeds["token_type_ids"][r, :len(type_rows[j])] = type_rows[j]
        for r, v in zip(batch, sess.run(["logits"], feeds)[0][:, 0]):
            out[r] = float(v)
        batch = [i] if i is not None else []
    return out


def main():
    p = argparse.ArgumentParser()
    p.add_argument("system", choices=["raw-ort", "st"])
    p.add_argument("--model", required=True)
    p.add_argument("--repeats", type=int, default=1)
    p.add_argument("--threads", type=int, default=2)
    a = p.parse_args()
    bench = json.load(open(f"{a.model}/bench.json"))
    query, docs = bench["query"], bench["documents"]
    seconds, logits = [], None
    if a.system == "raw-ort":
        import onnxruntime as ort
        from transformers import PreTrainedTokenizerFast
        tok = PreTrainedTokenizerFast.from_pretrained(a.model)
        so = ort.SessionOptions()
        so.intra_op_num_threads = a.threads
        so.inter_op_num_threads = 1
        sess = ort.InferenceSession(f"{a.model}/onnx/model.onnx", so, providers=["CPUExecutionProvider"])
        pad = json.load(open(f"{a.model}/config.json"))["pad_token_id"]

        def call():
            return run_sorted(sess, decoder_rows(tok, query, docs), pad)
    else:
        import torch
        from sentence_transformers import CrossEncoder
        torch.set_num_threads(a.threads)
        ce = CrossEncoder(a.model, device="cpu", max_length=4096, activation_fn=torch.nn.Identity())

        def call():
            pairs = [[f"{PREFIX}<Instruct>: {INSTRUCTION}\n<Query>: {query}\n", f"<Document>: {d}{SUFFIX}"] for d in docs]
            return [float(x) for x in ce.predict(pairs)]
    for _ in range(a.repeats):
        t = time.perf_counter()
        logits = call()
        seconds.append(time.perf_counter() - t)
    print(json.dumps({"seconds": seconds, "logits": logits}))


if __name__ == "__main__":
    main()
