"""What ONNX Runtime's CPU quantizations buy on a cross-encoder, in speed and in score error (issue 25 item 4).

    python scripts/quant_study.py --model DIR [--calls 4] [--rounds 3] [--threads 2]   (4-bit variants: pip install onnx-ir)

DIR is a decoder bench model (scripts/make_bench_decoder.py: bench.json's code chunks) or a BERT cross-encoder
(the agro triplets' queries, 20 candidates each, as `npm run bench` builds its calls). From DIR/onnx/model.onnx
it writes, into a scratch folder, every variant ONNX Runtime offers for CPUs:
  int8        quantize_dynamic, signed 8-bit weights per tensor (what finetune ships as model_quantized.onnx)
  int8-pc     the same, per output channel
  uint8       quantize_dynamic, unsigned 8-bit weights
  qdq         quantize_static, QDQ format, per channel, activations calibrated on the first call's batches
  4bit-int8   MatMulNBits, 4-bit weights in blocks of 32, int8 compute (accuracy_level 4)
  4bit-fp32   MatMulNBits, 4-bit weights, fp32 compute (accuracy_level 0)
then runs the same rerank calls through each (length-sorted batches of at most 1024 tokens, as the server
batches), the variants taking turns in a rotating order, and prints per variant: the time of the calls as a
ratio of fp32's (median over rounds of the per-round ratio), max |dlogit| against fp32, and top-5 agreement
(the share of calls whose five best documents are fp32's five, in the same order; and the mean overlap of the
two top-5 sets), beside the span of fp32's logits in a call: with random weights it is small, so ranks move easily. The CPU's flags are printed with it: int8 kernels differ by CPU (AVX2, AVX-512, VNNI).
"""
import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "scripts"))
from bench_decoder import decoder_rows, run_sorted  # noqa: E402

sys.path.insert(0, str(ROOT / "python"))
from quantize import quantize_int8  # noqa: E402

VARIANTS = ("int8", "int8-pc", "uint8", "qdq", "4bit-int8", "4bit-fp32")


def cpu_flags():
    try:
        info = Path("/proc/cpuinfo").read_text()
    except OSError:
        return "unknown CPU"
    model = next((l.split(":", 1)[1].strip() for l in info.splitlines() if l.startswith("model name")), "unknown CPU")
    flags = set(next((l.split(":", 1)[1].split() for l in info.splitlines() if l.startswith("flags")), []))
    return f"{model}, {os.cpu_count()} cores, " + " ".join(f"{f}:{'yes' if f in flags else 'no'}" for f in ("avx2", "avx512f", "avx512_vnni", "avx_vnni", "amx_int8"))


def workload(model_dir, calls):
    """Token-id rows per call, their token type rows (encoders; None for decoders), and the pad id."""
    from transformers import AutoTokenizer
    tok = AutoTokenizer.from_pretrained(model_dir)
    config = json.loads((Path(model_dir) / "config.json").read_text())
    triplets = [json.loads(l) for l in (ROOT / "test" / "fixtures" / "agro" / "triplets.jsonl").read_text().splitlines() if l.strip()]
    queries = [t["query"] for t in triplets[:calls]]
    bench = Path(model_dir) / "bench.json"
    if bench.exists():
        docs = json.loads(bench.read_text())["documents"]
        return [decoder_rows(tok, q, docs) for q in queries], [None] * len(queries), config["pad_token_id"]
    pool = [t["positive_text"] for t in triplets] + [d for t in triplets for d in t["negative_texts"]]
    rows, types = [], []
    for i, q in enumerate(queries):
        docs = [triplets[i]["positive_text"], *triplets[i]["negative_texts"]]
        docs += pool[i * 7: i * 7 + 20 - len(docs)]
        enc = [tok(q, d, truncation=True, max_length=512) for d in docs]
        rows.append([e["input_ids"] for e in enc])
        types.append([e["token_type_ids"] for e in enc])
    return rows, types, config.get("pad_token_id") or 0


def build(variant, src, out, calib):
    from onnxruntime.quantization import QuantFormat, QuantType, quantize_dynamic, quantize_static
    if variant == "int8":
        quantize_int8(src, out)
    elif variant in ("int8-pc", "uint8"):
        quantize_dynamic(src, out, weight_type=QuantType.QUInt8 if variant == "uint8" else QuantType.QInt8,
                         per_channel=variant == "int8-pc", use_external_data_format=True)
    elif variant == "qdq":
        quantize_static(src, out, calib, quant_format=QuantFormat.QDQ, per_channel=True, activation_type=QuantType.QUInt8,
                        weight_type=QuantType.QInt8, op_types_to_quantize=["MatMul"], use_external_data_format=True)
    else:
        import onnx
        from onnxruntime.quantization.matmul_nbits_quantizer import DefaultWeightOnlyQuantConfig, MatMulNBitsQuantizer
        level = 4 if variant == "4bit-int8" else 0
        q = MatMulNBitsQuantizer(onnx.load(src), algo_config=DefaultWeightOnlyQuantConfig(block_size=32, is_symmetric=True, accuracy_level=level))
        q.process()
        q.model.save_model_to_file(out, use_external_data_format=True)


class Calibration:
    """quantize_static's data reader: the first call's batches as the server would pad them."""
    def __init__(self, batches):
        self.batches = iter(batches)

    def get_next(self):
        return next(self.batches, None)


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--model", required=True)
    p.add_argument("--calls", type=int, default=4)
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--variants", default=",".join(VARIANTS))
    a = p.parse_args()
    import onnxruntime as ort
    src = str(Path(a.model) / "onnx" / "model.onnx")
    calls, types, pad = workload(a.model, a.calls)

    def session(path):
        o = ort.SessionOptions()
        o.intra_op_num_threads, o.inter_op_num_threads = a.threads, 1
        return ort.InferenceSession(path, o, providers=["CPUExecutionProvider"])

    def run_calls(sess):
        return [run_sorted(sess, rows, pad, type_rows=t) for rows, t in zip(calls, types)]

    class Recorder:  # the first call's feeds, for calibration
        def __init__(self, s):
            self.s, self.feeds = s, []

        def run(self, names, feeds):
            self.feeds.append({k: v for k, v in feeds.items()})
            return self.s.run(names, feeds)

    work = tempfile.mkdtemp(prefix="quant-study-")
    sessions = {"fp32": session(src)}
    rec = Recorder(sessions["fp32"])
    run_sorted(rec, calls[0], pad, type_rows=types[0])
    for v in a.variants.split(","):
        out = os.path.join(work, f"{v}.onnx")
        t = time.time()
        try:
            build(v, src, out, Calibration(rec.feeds))
            sessions[v] = session(out)
            print(f"{v}: built in {time.time() - t:.0f} s", file=sys.stderr, flush=True)
        except Exception as err:  # a quantizer that cannot handle this graph is reported, not fatal
            print(f"{v}: not built ({type(err).__name__}: {str(err)[:200]})", file=sys.stderr, flush=True)
    logits = {k: run_calls(s) for k, s in sessions.items()}  # warm-up, and the scores compared
    names = list(sessions)
    ratios = {k: [] for k in names}
    fp32_seconds = []
    for r in range(a.rounds):
        t = {}
        for k in names[r % len(names):] + names[:r % len(names)]:
            start = time.perf_counter()
            run_calls(sessions[k])
            t[k] = time.perf_counter() - start
        fp32_seconds.append(t["fp32"])
        for k in names:
            ratios[k].append(t[k] / t["fp32"])
    print(f"\n{cpu_flags()}; onnxruntime {ort.__version__}, {a.threads} threads")
    spread = float(np.median([max(x) - min(x) for x in logits["fp32"]]))
    print(f"model {a.model}: {len(calls)} calls x {len(calls[0])} documents, {a.rounds} rounds; fp32 {np.median(fp32_seconds):.2f} s for the calls")
    # Random weights put a call's logits close together: an error is only small or large against that spread.
    print(f"fp32 logits of one call span {spread:.2e} (median over calls, max - min)\n")
    print("| variant | time vs fp32 | speed-up | max abs dlogit vs fp32 | top-5 same order | top-5 overlap |")
    print("|---|---|---|---|---|---|")
    for k in names:
        d = max(float(np.max(np.abs(np.asarray(x) - np.asarray(y)))) for x, y in zip(logits[k], logits["fp32"]))
        tops = [(list(np.argsort(-np.asarray(x))[:5]), list(np.argsort(-np.asarray(y))[:5])) for x, y in zip(logits[k], logits["fp32"])]
        same = sum(x == y for x, y in tops) / len(tops)
        overlap = float(np.mean([len(set(x) & set(y)) / 5 for x, y in tops]))
        ratio = float(np.median(ratios[k]))
        print(f"| {k} | {ratio:.2f} | {1 / ratio:.2f}x | {d:.2e} | {same:.2f} | {overlap:.2f} |")


if __name__ == "__main__":
    main()
