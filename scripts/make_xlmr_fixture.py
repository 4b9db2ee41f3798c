#!/usr/bin/env python3
"""Makes the XLM-RoBERTa-shaped fixture (the shape of BAAI/bge-reranker-*): a SentencePiece
Unigram tokenizer trained here on generated mixed-script text, a tiny random
XLMRobertaForSequenceClassification exported to ONNX without token_type_ids, and
sentence-transformers CrossEncoder references.

    .venv-finetune/bin/python scripts/make_xlmr_fixture.py

Writes test/fixtures/xlmr-tiny/ (config.json, tokenizer.json, tokenizer_config.json,
special_tokens_map.json, model.safetensors, onnx/model.onnx) and test/fixtures/xlmr-tiny-parity.json:
- pairs[i] = [query, document]
- tokens[i] = {input_ids}: the features CrossEncoder.predict feeds the model (its own
  preprocess, batched, padding removed by the attention mask)
- logits[i]: predict with activation_fn=Identity; scores[i]: predict with the default
  activation (Sigmoid for one label); ort_python_logits[i]: onnxruntime (Python) on the ONNX file
- max_length: CrossEncoder.max_seq_length
"""
import json
import random
import shutil
import tempfile
from pathlib import Path

import numpy as np
import onnxruntime as ort
import sentencepiece as spm
import torch
from sentence_transformers import CrossEncoder
from transformers import XLMRobertaConfig, XLMRobertaForSequenceClassification, XLMRobertaTokenizer

ROOT = Path(__file__).resolve().parent.parent
DIR = ROOT / 'test' / 'fixtures' / 'xlmr-tiny'
PARITY = ROOT / 'test' / 'fixtures' / 'xlmr-tiny-parity.json'
SEED = 1126

LATIN = ['the', 'search', 'index', 'rerank', 'query', 'document', 'café', 'naïve', 'résumé', 'über', 'Straße', 'façade',
         'jalapeño', 'São', 'Paulo', 'Ångström', 'Dvořák', 'Łódź', 'smörgåsbord', 'coöperate', 'hybrid', 'vector', 'score']
CYRILLIC = ['поиск', 'документ', 'запрос', 'ранжирование', 'модель', 'быстрый', 'Москва', 'ёлка', 'щука']
GREEK = ['αναζήτηση', 'έγγραφο', 'ΟΔΟΣ', 'λόγος', 'Ἀθῆναι', 'ψυχή', 'κόσμος']
CJK = ['检索', '文档', '排序', '模型', '日本語', 'の', '検索', 'ランキング', '한국어', '검색', '中文分词']
ARABIC = ['بحث', 'وثيقة', 'ترتيب', 'نموذج', 'العربية', 'مرحبا']
EMOJI = ['😀', '🚀', '👍🏽', '🇫🇷', '👨‍👩‍👧', '❤️', '✨']
CODE = ['def', 'fn', 'return', 'x = 1;', 'foo(bar)', '{"a": 2}', 'self.model', '=>', '::', '0x1F', '3.14159', '2026-11-26',
        'i++', '#include', '</div>', 'SELECT * FROM t;', 'a_b_c', 'CamelCase']
NFKC = ['ｆｕｌｌｗｉｄｔｈ', 'ＡＢＣ１２３', 'ﬁle', 'ﬂow', 'ﬀ', '①②③', '½', 'Ⅻ', '㎏', '㍿', 'ｶﾀｶﾅ', '™', '…', 'e\u0301',
        'A\u030a', '\u2126', 'ﾞ', 'x²', '𝐀𝐁𝐂', '\u00a0', '\u3000', '\u200b', 'ſ', 'ǅ', '\ufb01x', '～', '〜']
RARE = ['ᚠᛇᚻ', 'ꦲꦏ', '𓀀𓀁', 'ⴰⵣ', 'ꯃꯩ', '\u061d', '\U00011070', '\U00016fe2', '\ue000', '\U000f0000', '\ufdd0', '\uffff',
        '\u0007', '\u001b', '\u0085', '\ufeff', '\ufffd', '\u2028', 'ǂ', 'ʬ', '჻']
SPECIAL = ['<s>', '</s>', '<unk>', '<pad>', '<mask>', ' <mask> ', '<s', '▁', '▁▁']
WHITESPACE = [' ', ' ', ' ', '  ', '   ', '\t', '\n', '\r\n', ' \u3000 ', '\u00a0', '']


def corpus_words(rng):
    pools = [LATIN, CYRILLIC, GREEK, CJK, ARABIC, EMOJI, CODE, NFKC]
    weights = [5, 2, 2, 2, 2, 1, 3, 1]
    return rng.choices(pools, weights)[0]


ALPHABETS = [
    'abcdefghijklmnopqrstuvwxyzéèàùâêîôûçäöüñ', 'абвгдеёжзийклмнопрстуфхцчшщъыьэюя', 'αβγδεζηθικλμνξοπρστυφχψωάέήίόύώ',
    ''.join(chr(c) for c in range(0x4E00, 0x4E00 + 300)), 'ابتثجحخدذرزسشصضطظعغفقكلمنهوي', ''.join(chr(c) for c in range(0xAC00, 0xAC00 + 200)),
    '0123456789', 'ぁあぃいぅうぇえぉおかがきぎくぐけげこごさざしじすずせぜそぞただちぢっつづてでとどなにぬねのはばぱひびぴ']


def random_word(rng):
    alphabet = rng.choice(ALPHABETS)
    return ''.join(rng.choice(alphabet) for _ in range(rng.randint(1, 8)))


def training_text(rng, lines=8000):
    out = []
    for _ in range(lines):
        out.append(' '.join(rng.choice(corpus_words(rng)) if rng.random() < 0.5 else random_word(rng) for _ in range(rng.randint(3, 15))))
    return '\n'.join(out)


def random_text(rng, n_words):
    pools = [LATIN, CYRILLIC, GREEK, CJK, ARABIC, EMOJI, CODE, NFKC, RARE, SPECIAL]
    weights = [6, 2, 2, 2, 2, 1, 3, 2, 1, 0.3]
    parts = []
    for _ in range(n_words):
        w = rng.choice(rng.choices(pools, weights)[0])
        if rng.random() < 0.15:
            w = w + rng.choice(rng.choices(pools, weights)[0])  # glued scripts
        if rng.random() < 0.05:
            w = w.upper()
        parts.append(w)
        parts.append(rng.choice(WHITESPACE))
    text = ''.join(parts)
    if rng.random() < 0.1:
        text = rng.choice(WHITESPACE) + text
    return text


def make_pairs(rng):
    pairs = [['', ''], ['', 'document only'], ['query only', ''], ['   ', '\t\n'], ['<s>', '</s>'], ['<mask>', 'a <mask> b'],
             ['ｆｕｌｌ ﬁ ①', 'ＡＢＣ ½ Ⅻ ㎏'], ['😀👍🏽🇫🇷', '👨‍👩‍👧 ❤️'], ['ᚠᛇᚻ ꦲꦏ 𓀀', '\ue000\U000f0000\ufdd0'],
             ['a\u0007b\u001bc', 'x\u0085y\ufeffz\u200bw']]
    for i in range(300):
        kind = i % 20
        if kind == 0:  # both sides over 512 tokens
            pairs.append([random_text(rng, rng.randint(400, 700)), random_text(rng, rng.randint(400, 900))])
        elif kind == 1:  # long query
            pairs.append([random_text(rng, rng.randint(400, 800)), random_text(rng, rng.randint(0, 40))])
        elif kind == 2:  # long document
            pairs.append([random_text(rng, rng.randint(0, 12)), random_text(rng, rng.randint(500, 1200))])
        elif kind == 3:  # empty side
            pairs.append(['', random_text(rng, 20)] if i % 40 == 3 else [random_text(rng, 8), ''])
        else:
            pairs.append([random_text(rng, rng.randint(1, 12)), random_text(rng, rng.randint(5, 80))])
    return pairs


def main():
    rng = random.Random(SEED)
    torch.manual_seed(SEED)
    if DIR.exists():
        shutil.rmtree(DIR)
    (DIR / 'onnx').mkdir(parents=True)

    with tempfile.TemporaryDirectory() as tmp:
        corpus = Path(tmp) / 'corpus.txt'
        corpus.write_text(training_text(rng))
        spm.SentencePieceTrainer.train(
            input=str(corpus), model_prefix=str(Path(tmp) / 'sp'), vocab_size=1500, model_type='unigram',
            normalization_rule_name='nmt_nfkc', character_coverage=0.995, seed_sentencepiece_size=50000,
            num_threads=2, minloglevel=2, hard_vocab_limit=False)
        # As a Hub XLM-R repo ships it: sentencepiece.bpe.model, converted by transformers.
        sp_dir = Path(tmp) / 'sp'
        sp_dir.mkdir()
        shutil.copy(Path(tmp) / 'sp.model', sp_dir / 'sentencepiece.bpe.model')
        tok = XLMRobertaTokenizer.from_pretrained(str(sp_dir), model_max_length=512)
        tok.save_pretrained(str(DIR))
    # Keep what a Hub bge-reranker repo has that the server reads; the .model file is not needed.
    for extra in DIR.glob('*.model'):
        extra.unlink()

    tok_json = json.loads((DIR / 'tokenizer.json').read_text())
    config = XLMRobertaConfig(
        vocab_size=len(tok_json['model']['vocab']), hidden_size=48, num_hidden_layers=2, num_attention_heads=4,
        intermediate_size=96, max_position_embeddings=514, type_vocab_size=1, pad_token_id=1, bos_token_id=0,
        eos_token_id=2, num_labels=1, initializer_range=0.2)
    model = XLMRobertaForSequenceClassification(config).eval()
    model.save_pretrained(str(DIR))

    class Logits(torch.nn.Module):
        def __init__(self, m):
            super().__init__()
            self.m = m

        def forward(self, input_ids, attention_mask):
            return self.m(input_ids=input_ids, attention_mask=attention_mask).logits

    ids = torch.tensor([[0, 100, 200, 2, 2, 300, 2]])
    torch.onnx.export(
        Logits(model), (ids, torch.ones_like(ids)), str(DIR / 'onnx' / 'model.onnx'),
        input_names=['input_ids', 'attention_mask'], output_names=['logits'],
        dynamic_axes={'input_ids': {0: 'batch', 1: 'sequence'}, 'attention_mask': {0: 'batch', 1: 'sequence'}, 'logits': {0: 'batch'}},
        opset_version=17, dynamo=False)

    pairs = make_pairs(rng)
    ce = CrossEncoder(str(DIR), device='cpu')
    tokens = [None] * len(pairs)
    # predict's own batching: longest first, batches of 32, its own preprocess.
    order = np.argsort([-ce._input_length(p) for p in pairs], kind='stable')
    session = ort.InferenceSession(str(DIR / 'onnx' / 'model.onnx'))
    ort_logits = [None] * len(pairs)
    for start in range(0, len(order), 32):
        idx = order[start:start + 32]
        features = ce.preprocess([pairs[i] for i in idx])
        feeds = {'input_ids': features['input_ids'].numpy().astype(np.int64),
                 'attention_mask': features['attention_mask'].numpy().astype(np.int64)}
        out = session.run(['logits'], feeds)[0]
        for row, i in enumerate(idx):
            n = int(features['attention_mask'][row].sum())
            tokens[i] = {'input_ids': features['input_ids'][row][:n].tolist()}
            ort_logits[i] = float(out[row][0])
    logits = ce.predict(pairs, activation_fn=torch.nn.Identity()).tolist()
    scores = ce.predict(pairs).tolist()

    unk = tok_json['model']['unk_id']
    lengths = [len(t['input_ids']) for t in tokens]
    PARITY.write_text(json.dumps({
        'about': 'generated by scripts/make_xlmr_fixture.py; see its docstring',
        'max_length': ce.max_seq_length, 'activation': type(ce.activation_fn).__name__,
        'pairs': pairs, 'tokens': tokens, 'logits': logits, 'scores': scores, 'ort_python_logits': ort_logits,
    }, ensure_ascii=False, separators=(',', ':')))
    size = sum(f.stat().st_size for f in DIR.rglob('*') if f.is_file())
    print(f'{DIR.relative_to(ROOT)}: {size} bytes; {PARITY.relative_to(ROOT)}: {PARITY.stat().st_size} bytes')
    print(f'{len(pairs)} pairs, {sum(l == ce.max_seq_length for l in lengths)} at max_length {ce.max_seq_length}, '
          f'{sum(t["input_ids"].count(unk) for t in tokens)} <unk>; max |torch - ort| '
          f'{max(abs(a - b) for a, b in zip(logits, ort_logits)):.2e}; activation {type(ce.activation_fn).__name__}')


if __name__ == '__main__':
    main()
