#!/usr/bin/env bash
# End-to-end check of python/finetune.py without internet: a tiny random BERT base, a small training set
# made from triplets, one epoch, then the files the server needs must be in the output directory.
#
#   scripts/verify_finetune.sh [TRIPLETS.jsonl] [TOKENIZER_DIR]
#
# TRIPLETS: JSON Lines with query, positive_text, negative_texts[] (default test/fixtures/agro/triplets.jsonl)
# TOKENIZER_DIR: local tokenizer files (default test/fixtures/agro: the real BERT uncased tokenizer files)
# Env: PYTHON (default python3), DEVICE (auto|cpu|cuda, default auto), KEEP=1 keeps the temp dir.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(dirname "$HERE")"
TRIPLETS="${1:-$ROOT/test/fixtures/agro/triplets.jsonl}"
TOKENIZER="${2:-$ROOT/test/fixtures/agro}"
PY="${PYTHON:-python3}"
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 HF_DATASETS_OFFLINE=1 TOKENIZERS_PARALLELISM=false

[ -f "$TRIPLETS" ] || { echo "triplets file not found: $TRIPLETS" >&2; exit 2; }
[ -f "$TOKENIZER/tokenizer.json" ] || { echo "no tokenizer.json in $TOKENIZER" >&2; exit 2; }

WORK="$(mktemp -d)"
if [ "${KEEP:-0}" = 1 ]; then echo "keeping $WORK"; else trap 'rm -rf "$WORK"' EXIT; fi

echo "== tiny base"
"$PY" "$HERE/make_tiny_base.py" --tokenizer "$TOKENIZER" --out "$WORK/base"

echo "== training data"
"$PY" - "$TRIPLETS" "$WORK/train.jsonl" <<'PYEOF'
import json, sys
src, dst = sys.argv[1], sys.argv[2]
n = 0
with open(src, encoding="utf-8") as fin, open(dst, "w", encoding="utf-8") as fout:
    for line in fin:
        if not line.strip():
            continue
        t = json.loads(line)
        pairs = [(t["positive_text"], 1.0)] + [(neg, 0.0) for neg in t.get("negative_texts", [])]
        for doc, label in pairs:
            fout.write(json.dumps({"sentence_0": t["query"], "sentence_1": doc, "label": label}) + "\n")
            n += 1
print(f"{n} pairs written to {dst}")
PYEOF

echo "== finetune"
"$PY" "$ROOT/python/finetune.py" --data "$WORK/train.jsonl" --base "$WORK/base" --out "$WORK/out" \
  --epochs 1 --device "${DEVICE:-auto}"

echo "== output check"
"$PY" - "$WORK/out" <<'PYEOF'
import json, os, sys
out = sys.argv[1]
problems = [f"missing {f}" for f in ("onnx/model.onnx", "onnx/model_quantized.onnx", "config.json", "tokenizer.json",
                                     "metrics.json") if not os.path.isfile(os.path.join(out, f))]
if not problems:
    act = json.load(open(os.path.join(out, "config.json"))).get("sentence_transformers", {}).get("activation_fn")
    if not act:
        problems.append("config.json has no sentence_transformers.activation_fn")
    m = json.load(open(os.path.join(out, "metrics.json")))
    print(f"activation_fn {act}; before {m.get('before')}; after {m.get('after')}; onnx {m['onnx']}")
if problems:
    sys.exit("FAIL: " + "; ".join(problems))
print("OK: " + ", ".join(sorted(os.listdir(out))))
PYEOF
