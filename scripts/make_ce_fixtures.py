#!/usr/bin/env python3
"""Makes the BERT cross-encoder fixtures the tests and benchmarks read, from what is committed in
test/fixtures/agro/ (the real uncased WordPiece tokenizer files of the fine-tuned ms-marco-MiniLM
cross-encoder this project serves, and real code-search triplets):

- test/fixtures/models/tiny-ce/: BertForSequenceClassification, 2 layers, hidden 64, random weights
  (seed 0, initializer_range 0.2 so scores spread), config.json with the Identity activation the
  production model declares; onnx/model.onnx exported from torch (opset 17).
- test/fixtures/models/minilm-l6-ternary/: the MiniLM-L6-H384 shape (6 layers, 12 heads, 22.7 M params)
  with ternary weights (three values per tensor) and no activation in config.json (a one-label
  CrossEncoder then applies a sigmoid); onnx/model.onnx (fp32) and onnx/model_quantized.onnx
  (onnxruntime quantize_dynamic, uint8 weights as the Hub's model_quantized.onnx files have).
- test/fixtures/parity/tiny-ce.json: on the 428 pairs of agro/parity-pairs.json, the tokenizer's pair
  encoding (truncation=True, max_length=512), PyTorch logits, onnxruntime (Python) logits,
  CrossEncoder.predict with the default / Sigmoid / Identity activation, and CrossEncoder.rank of
  the first query over the first eight documents.
- test/fixtures/parity/unicode-planes.json: scripts/make_unicode_fixture.py run on this tiny-ce.
- test/fixtures/parity/minilm-l6-ternary.json: on the first 64 pairs, PyTorch logits and onnxruntime
  (Python) logits of the fp32 and int8 files, run in input-order batches of 16 (dynamic quantization
  scales each batch by its own range).

The weights are random: scores carry no relevance signal; they prove this project computes what
PyTorch, sentence-transformers and onnxruntime compute on the same checkpoint.

    .venv-finetune/bin/python scripts/make_ce_fixtures.py [--out test/fixtures]

test/helpers/fixtures.ts runs it when its output is missing or older than this script and its inputs.
"""
import argparse
import json
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import onnxruntime as ort
import torch
from onnxruntime.quantization import QuantType, quantize_dynamic
from sentence_transformers import CrossEncoder
from transformers import AutoTokenizer, BertConfig, BertForSequenceClassification

ROOT = Path(__file__).resolve().parent.parent
AGRO = ROOT / 'test' / 'fixtures' / 'agro'
TOKENIZER_FILES = ['tokenizer.json', 'tokenizer_config.json', 'special_tokens_map.json', 'vocab.txt']
SEED = 0


def parity_pairs():
    triplets = [json.loads(line) for line in (AGRO / 'triplets.jsonl').read_text().splitlines() if line.strip()]
    every = []
    for t in triplets:
        every.append([t['query'], t['positive_text']])
        every.extend([t['query'], n] for n in t['negative_texts'])
    return [every[i] for i in json.loads((AGRO / 'parity-pairs.json').read_text())['indices']]


class Logits(torch.nn.Module):
    def __init__(self, m):
        super().__init__()
        self.m = m

    def forward(self, input_ids, attention_mask, token_type_ids):
        return self.m(input_ids=input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids).logits


def export(model, path):
    ids = torch.tensor([[101, 2054, 102, 3793, 102]])
    axes = {0: 'batch', 1: 'sequence'}
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.onnx.export(
        Logits(model), (ids, torch.ones_like(ids), torch.tensor([[0, 0, 0, 1, 1]])), str(path),
        input_names=['input_ids', 'attention_mask', 'token_type_ids'], output_names=['logits'],
        dynamic_axes={'input_ids': axes, 'attention_mask': axes, 'token_type_ids': axes, 'logits': {0: 'batch'}},
        opset_version=17, dynamo=False)


# tiny-ce's config.json as the fixture has always had it (transformers 5.17's save_pretrained plus the
# sentence-transformers key), written byte for byte so its size and hash do not follow the installed
# transformers version (test/hub.test.ts serves it from a fake Hub and checks both).
TINY_CE_CONFIG = {
    'add_cross_attention': False, 'architectures': ['BertForSequenceClassification'], 'attention_probs_dropout_prob': 0.1,
    'bos_token_id': None, 'classifier_dropout': None, 'dtype': 'float32', 'eos_token_id': None, 'hidden_act': 'gelu',
    'hidden_dropout_prob': 0.1, 'hidden_size': 64, 'id2label': {'0': 'LABEL_0'}, 'initializer_range': 0.2,
    'intermediate_size': 128, 'is_decoder': False, 'label2id': {'LABEL_0': 0}, 'layer_norm_eps': 1e-12,
    'max_position_embeddings': 512, 'model_type': 'bert', 'num_attention_heads': 4, 'num_hidden_layers': 2,
    'pad_token_id': 0, 'position_embedding_type': 'absolute', 'tie_word_embeddings': True,
    'transformers_version': '5.17.0', 'type_vocab_size': 2, 'use_cache': True, 'vocab_size': 30522,
    'sentence_transformers': {'activation_fn': 'torch.nn.modules.linear.Identity', 'version': '5.1.1'},
}


def build(work, name, config, ternary=False, activation=None):
    """A random BertForSequenceClassification with the real tokenizer files, saved in work/name."""
    torch.manual_seed(SEED)
    model = BertForSequenceClassification(config).eval()
    if ternary:
        # Three values per matrix (-r, 0, r with r = initializer_range): the file compresses, the compute is real.
        with torch.no_grad():
            for p in model.parameters():
                if p.dim() >= 2:
                    p.copy_(torch.randint(-1, 2, p.shape, dtype=p.dtype) * config.initializer_range)
    d = work / name
    model.save_pretrained(str(d))
    for f in TOKENIZER_FILES:
        shutil.copy(AGRO / f, d / f)
    if name == 'tiny-ce':
        saved = json.loads((d / 'config.json').read_text())
        assert all(TINY_CE_CONFIG[k] == v for k, v in saved.items() if k not in ('transformers_version', 'dtype', 'sentence_transformers')), saved
        (d / 'config.json').write_text(json.dumps(TINY_CE_CONFIG, indent=2))
    elif activation:
        cfg = json.loads((d / 'config.json').read_text())
        cfg['sentence_transformers'] = {'activation_fn': activation}
        (d / 'config.json').write_text(json.dumps(cfg, indent=2) + '\n')
    return model, d


def batches(n, size):
    return [range(s, min(s + size, n)) for s in range(0, n, size)]


def run(model_or_session, tok, pairs, size):
    out = []
    for b in batches(len(pairs), size):
        enc = tok([pairs[i][0] for i in b], [pairs[i][1] for i in b], padding=True, truncation=True, max_length=512, return_tensors='np')
        feeds = {k: enc[k].astype(np.int64) for k in ('input_ids', 'attention_mask', 'token_type_ids')}
        if isinstance(model_or_session, ort.InferenceSession):
            logits = model_or_session.run(['logits'], feeds)[0]
        else:
            with torch.no_grad():
                logits = model_or_session(**{k: torch.from_numpy(v) for k, v in feeds.items()}).logits.numpy()
        out.extend(float(x) for x in logits[:, 0])
    return out


def session(path):
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 1
    return ort.InferenceSession(str(path), opts, providers=['CPUExecutionProvider'])


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('--out', default=str(ROOT / 'test' / 'fixtures'))
    out = Path(ap.parse_args().out)
    out.mkdir(parents=True, exist_ok=True)
    torch.set_num_threads(2)
    pairs = parity_pairs()

    with tempfile.TemporaryDirectory(dir=out) as tmp:
        work = Path(tmp)
        (work / 'models').mkdir()
        (work / 'parity').mkdir()

        # tiny-ce
        config = BertConfig(vocab_size=30522, hidden_size=64, num_hidden_layers=2, num_attention_heads=4, intermediate_size=128,
                            max_position_embeddings=512, type_vocab_size=2, initializer_range=0.2, num_labels=1)
        model, d = build(work / 'models', 'tiny-ce', config, activation='torch.nn.modules.linear.Identity')
        tok = AutoTokenizer.from_pretrained(str(d))
        tokens = [{k: v for k, v in tok(q, doc, truncation=True, max_length=512).items() if k in ('input_ids', 'token_type_ids')} for q, doc in pairs]
        torch_logits = run(model, tok, pairs, 32)
        ce = CrossEncoder(str(d), device='cpu')
        default = ce.predict(pairs).tolist()
        sigmoid = ce.predict(pairs, activation_fn=torch.nn.Sigmoid()).tolist()
        identity = ce.predict(pairs, activation_fn=torch.nn.Identity()).tolist()
        query, documents = pairs[0][0], [doc for _, doc in pairs[:8]]
        ranked = [{'corpus_id': int(r['corpus_id']), 'score': float(r['score'])} for r in ce.rank(query, documents)]
        (d / 'model.safetensors').unlink()
        export(model, d / 'onnx' / 'model.onnx')
        ort_logits = run(session(d / 'onnx' / 'model.onnx'), tok, pairs, 32)
        (work / 'parity' / 'tiny-ce.json').write_text(json.dumps({
            'model': 'tiny-ce', 'note': 'random weights; generated by scripts/make_ce_fixtures.py (see its docstring)',
            'pairs': pairs, 'tokens': tokens, 'torch_logits': torch_logits, 'ort_python_logits': ort_logits,
            'st_default_activation': type(ce.activation_fn).__name__, 'st_predict_default': default,
            'st_predict_identity': identity, 'st_predict_sigmoid': sigmoid,
            'st_rank': {'query': query, 'documents': documents, 'result': ranked},
        }, ensure_ascii=False) + '\n')
        # Its logits come from this tiny-ce, so it is made with it.
        subprocess.run([sys.executable, str(ROOT / 'scripts' / 'make_unicode_fixture.py'), '--model', str(d),
                        '--out', str(work / 'parity' / 'unicode-planes.json')], check=True)
        print(f'tiny-ce: max |torch - ort| {max(abs(a - b) for a, b in zip(torch_logits, ort_logits)):.2e}, '
              f'max |torch - st| {max(abs(a - b) for a, b in zip(torch_logits, default)):.2e}, activation {type(ce.activation_fn).__name__}')

        # minilm-l6-ternary: the first 64 pairs, input-order batches of 16
        config = BertConfig(vocab_size=30522, hidden_size=384, num_hidden_layers=6, num_attention_heads=12, intermediate_size=1536,
                            max_position_embeddings=512, type_vocab_size=2, initializer_range=0.02, num_labels=1)
        model, d = build(work / 'models', 'minilm-l6-ternary', config, ternary=True)
        sub = pairs[:64]
        torch_logits = run(model, tok, sub, 16)
        (d / 'model.safetensors').unlink()
        export(model, d / 'onnx' / 'model.onnx')
        quantize_dynamic(str(d / 'onnx' / 'model.onnx'), str(d / 'onnx' / 'model_quantized.onnx'), weight_type=QuantType.QUInt8)
        fp32 = run(session(d / 'onnx' / 'model.onnx'), tok, sub, 16)
        int8 = run(session(d / 'onnx' / 'model_quantized.onnx'), tok, sub, 16)
        (work / 'parity' / 'minilm-l6-ternary.json').write_text(json.dumps({
            'model': 'minilm-l6-ternary', 'config': config.to_diff_dict(), 'pairs': sub,
            'torch_logits': torch_logits, 'ort_python_logits': fp32, 'ort_python_int8_logits': int8,
        }, ensure_ascii=False) + '\n')
        print(f'minilm-l6-ternary: max |torch - ort fp32| {max(abs(a - b) for a, b in zip(torch_logits, fp32)):.2e}, '
              f'max |fp32 - int8| {max(abs(a - b) for a, b in zip(fp32, int8)):.2e}, logits {min(torch_logits):.3f}..{max(torch_logits):.3f}')

        for sub_dir in ('models', 'parity'):
            shutil.rmtree(out / sub_dir, ignore_errors=True)
            (work / sub_dir).rename(out / sub_dir)


if __name__ == '__main__':
    main()
