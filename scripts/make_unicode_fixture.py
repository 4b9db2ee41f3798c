#!/usr/bin/env python3
"""Writes test/fixtures/unicode-planes.json: what Python's Rust-backed tokenizer does with
every code point, and random pairs over all planes with their ids and scores.

    .venv-finetune/bin/python scripts/make_unicode_fixture.py [--model DIR] [--out FILE]

scripts/make_ce_fixtures.py runs it on the tiny-ce model it makes (test/fixtures/models/tiny-ce),
writing test/fixtures/parity/unicode-planes.json.

1. `chars`: for every code point except surrogates (lone surrogates are not valid strings
   in Python and cannot reach the Rust tokenizer), the output of the model's BertNormalizer
   on that one character, and whether BertPreTokenizer splits at it (whitespace) or isolates
   it (punctuation). Stored as runs plus a list of the characters whose output is none of
   "itself / removed / a space / itself between spaces".
2. `pairs`: random (query, document) pairs drawn over all planes: assigned, unassigned,
   private use, noncharacters, next to the surrogate block, blocks assigned after the Rust
   crate's tables, and the characters whose class there differs from current Unicode.
   `tokens` are the ids of the batched call CrossEncoder.predict makes
   (tokenizer(queries, documents, padding=True, truncation=True, max_length=512) on
   length-sorted batches of 32), with padding removed. `logits` are onnxruntime (Python) on
   the same padded batches: the fixture model ships ONNX only, and its config's activation
   is Identity, so these are CrossEncoder.predict's scores.
"""
import argparse
import json
import random
import unicodedata
from pathlib import Path

import numpy as np
import onnxruntime as ort
from transformers import AutoTokenizer

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / 'test' / 'fixtures' / 'parity' / 'unicode-planes.json'
SEED = 20261126
N_PAIRS = 400
BATCH = 32
MAX_LENGTH = 512

# Blocks assigned in Unicode 10-17: characters the crate's tables (older) do not know.
RECENT_BLOCKS = [
    (0x0860, 0x086F), (0x0870, 0x089F), (0x11A00, 0x11AAF), (0x11D00, 0x11DAF), (0x16FE0, 0x16FFF),
    (0x1E900, 0x1E95F), (0x11070, 0x1107F), (0x0600, 0x06FF), (0x10F00, 0x10FFF), (0x11F00, 0x11F5F),
    (0x1E4D0, 0x1E4FF), (0x10D40, 0x10D8F), (0x16D40, 0x16D7F), (0x11380, 0x113FF), (0x1E5D0, 0x1E5FF),
    (0x16100, 0x1613F), (0x105C0, 0x105FF), (0x11BC0, 0x11BFF), (0x1CC00, 0x1CEBF), (0x10940, 0x1095F),
    (0x11DB0, 0x11DEF), (0x16EA0, 0x16EDF), (0x1E6C0, 0x1E6FF), (0x2EBF0, 0x2EE5F), (0x31350, 0x323AF),
    (0x323B0, 0x3347F), (0x1F900, 0x1F9FF), (0x1FA70, 0x1FAFF), (0x2B820, 0x2B92F), (0xA7C0, 0xA7FF),
]
KNOWN = [0x061D, 0x11070, 0x11073, 0x11074, 0x16FE2, 0x16FE4, 0x0085, 0xFEFF, 0x180E, 0x1680, 0x00AD]
WORDS = ['the', 'search', 'Index', 'café', 'naïve', 'ΟΔΟΣ', 'Straße', 'über', 'hybrid_search', 'fn()', 'x=1;',
         '中文', '日本語', 'русский', 'عربى', '한국어', 'emoji😀', 'ﬁne', 'Ⅻ', '①', 'ｆｕｌｌ', 'İstanbul']


def all_code_points():
    return (cp for cp in range(0x110000) if not 0xD800 <= cp <= 0xDFFF)


def char_table(normalizer, pre_tokenizer):
    """Runs of [start, end, kind] and explicit outputs, over every code point."""
    kinds = []  # per code point: 0 itself, 1 removed, 2 a space, 3 itself between spaces, 4 explicit
    explicit = []
    split = []  # per code point: 0 in a word, 1 whitespace (dropped), 2 punctuation (isolated)
    for cp in all_code_points():
        c = chr(cp)
        n = normalizer.normalize_str(c)
        if n == c:
            k = 0
        elif n == '':
            k = 1
        elif n == ' ':
            k = 2
        elif n == f' {c} ':
            k = 3
        else:
            k = 4
            explicit.append([cp, n])
        kinds.append((cp, k))
        words = [w for w, _ in pre_tokenizer.pre_tokenize_str(f'a{c}b')]
        split.append((cp, 0 if words == [f'a{c}b'] else 1 if words == ['a', 'b'] else 2 if words == ['a', c, 'b'] else None))
        if split[-1][1] is None:
            raise SystemExit(f'unexpected pre-tokenization of U+{cp:04X}: {words}')
    return runs(kinds), explicit, runs(split)


def runs(values):
    out = []
    for cp, v in values:
        if out and out[-1][2] == v and out[-1][1] == cp - 1:
            out[-1][1] = cp
        else:
            out.append([cp, cp, v])
    return out


def interesting_code_points(normalizer, pre_tokenizer):
    """Code points that current Unicode classes differently from the Rust crate's tables."""
    out = []
    for cp in all_code_points():
        cat = unicodedata.category(chr(cp))
        if cat[0] == 'P' or cat in ('Mn', 'Cc', 'Cf', 'Co', 'Zs'):
            c = chr(cp)
            if [w for w, _ in pre_tokenizer.pre_tokenize_str(f'a{c}b')] == [f'a{c}b'] and normalizer.normalize_str(c) == c:
                out.append(cp)
    return out


def draw_code_point(rng, assigned, unassigned, interesting):
    r = rng.random()
    if r < 0.25:
        return rng.choice(assigned)
    if r < 0.35:
        return rng.choice(unassigned)
    if r < 0.45:
        lo, hi = rng.choice([(0xE000, 0xF8FF), (0xF0000, 0xFFFFD), (0x100000, 0x10FFFD)])
        return rng.randint(lo, hi)
    if r < 0.50:
        return rng.choice([*range(0xFDD0, 0xFDF0), *[(p << 16) | x for p in range(17) for x in (0xFFFE, 0xFFFF)]])
    if r < 0.55:
        return rng.choice([*range(0xD7F0, 0xD800), *range(0xE000, 0xE010)])
    if r < 0.75:
        lo, hi = rng.choice(RECENT_BLOCKS)
        return rng.randint(lo, hi)
    if r < 0.90:
        return rng.choice(interesting)
    return rng.choice(KNOWN)


def random_text(rng, pools, n_words):
    parts = []
    for _ in range(n_words):
        r = rng.random()
        if r < 0.3:
            parts.append(rng.choice(WORDS))
        elif r < 0.6:
            # a character glued inside a word: Rust keeps unknown classes in the word
            parts.append(rng.choice(WORDS) + chr(draw_code_point(rng, *pools)) + rng.choice(['', 'x', 'de', '1']))
        else:
            parts.append(''.join(chr(draw_code_point(rng, *pools)) for _ in range(rng.randint(1, 4))))
        parts.append(rng.choice([' ', ' ', ' ', '', '\t', '\n', '\u3000', '  ']))
    return ''.join(parts)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('--model', default=str(ROOT / 'test' / 'fixtures' / 'models' / 'tiny-ce'))
    ap.add_argument('--out', default=str(OUT))
    args = ap.parse_args()
    out_path = Path(args.out)
    tok = AutoTokenizer.from_pretrained(args.model)
    backend = tok.backend_tokenizer
    kinds, explicit, split = char_table(backend.normalizer, backend.pre_tokenizer)
    interesting = interesting_code_points(backend.normalizer, backend.pre_tokenizer)

    assigned, unassigned = [], []
    for cp in all_code_points():
        (unassigned if unicodedata.category(chr(cp)) == 'Cn' else assigned).append(cp)
    rng = random.Random(SEED)
    pools = (assigned, unassigned, interesting)
    pairs = []
    for i in range(N_PAIRS):
        # a few long ones so that truncation cuts through these characters too
        long = i % 25 == 0
        q = random_text(rng, pools, rng.randint(0, 6) if not long else rng.randint(150, 400))
        d = random_text(rng, pools, rng.randint(0, 40) if not long else rng.randint(300, 700))
        pairs.append([q, d])

    session = ort.InferenceSession(str(Path(args.model) / 'onnx' / 'model.onnx'))
    input_names = {i.name for i in session.get_inputs()}
    tokens = [None] * len(pairs)
    logits = [None] * len(pairs)
    # CrossEncoder.predict: longest first (by characters), batches of 32, one tokenizer call each.
    order = np.argsort([-(len(q) + len(d)) for q, d in pairs], kind='stable')
    for start in range(0, len(order), BATCH):
        idx = order[start:start + BATCH]
        enc = tok([pairs[i][0] for i in idx], [pairs[i][1] for i in idx], padding=True, truncation=True,
                  max_length=MAX_LENGTH, return_tensors='np')
        feeds = {k: enc[k].astype(np.int64) for k in ('input_ids', 'attention_mask', 'token_type_ids') if k in input_names}
        out = session.run(['logits'], feeds)[0]
        for row, i in enumerate(idx):
            n = int(enc['attention_mask'][row].sum())
            tokens[i] = {'input_ids': enc['input_ids'][row][:n].tolist(), 'token_type_ids': enc['token_type_ids'][row][:n].tolist()}
            logits[i] = float(out[row][0])

    unk = tok.unk_token_id
    out_path.parent.mkdir(parents=True, exist_ok=True)
    out_path.write_text(json.dumps({
        'about': 'generated by scripts/make_unicode_fixture.py; see its docstring',
        'model': 'tiny-ce', 'max_length': MAX_LENGTH, 'seed': SEED,
        'chars': {'normalized_runs': kinds, 'normalized_explicit': explicit, 'pre_tokenizer_runs': split,
                  'kinds': ['itself', 'removed', 'space', 'between spaces', 'explicit'],
                  'pre_tokenizer_kinds': ['in word', 'whitespace', 'punctuation']},
        'pairs': pairs, 'tokens': tokens, 'logits': logits,
    }, ensure_ascii=False, separators=(',', ':')))
    n_unk = sum(t['input_ids'].count(unk) for t in tokens)
    print(f'{out_path}: {out_path.stat().st_size} bytes; {len(pairs)} pairs, {n_unk} [UNK]; '
          f'{len(kinds)} normalizer runs, {len(explicit)} explicit, {len(split)} pre-tokenizer runs, '
          f'{len(interesting)} code points classed differently by current Unicode')


if __name__ == '__main__':
    main()
