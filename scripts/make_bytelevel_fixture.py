#!/usr/bin/env python3
"""Makes the byte-level BPE fixtures: small tokenizers trained here with Python `tokenizers`
in the shapes of the real rerankers' tokenizer.json, and the ids Python gives them.

    .venv-finetune/bin/python scripts/make_bytelevel_fixture.py [--out DIR] [--seed N] [--pairs N]

Shapes (what the Hub files have):
- qwen3: Qwen3-Reranker-*-seq-cls. NFC, Split(Qwen2 regex, Isolated) + ByteLevel(use_regex
  false), BPE without unk, ByteLevel post-processor, <|endoftext|> <|im_start|> <|im_end|>
  special, <think> </think> added non-special; pad <|endoftext|>, padding_side left. Merges as
  [a, b] pairs (the current format).
- mxbai-v2: mxbai-rerank-*-v2 (Qwen2): the same pipeline, merges as "a b" strings (the older
  format), Sequence[ByteLevel] post-processor.
- modernbert: gte-reranker-modernbert-base. NFC, ByteLevel(add_prefix_space false, GPT-2
  regex), TemplateProcessing [CLS] A [SEP] B [SEP], [MASK] with lstrip, a normalized
  non-special added token (|||EMAIL_ADDRESS|||, as ModernBERT's OLMo-derived vocabulary has).

For each, test/fixtures/bytelevel/<shape>/ holds tokenizer.json + tokenizer_config.json and
<shape>-pairs.json:
- max_length; pairs[i] = [query, document]; input_ids[i], token_type_ids[i]: the fast tokenizer
  called as CrossEncoder.predict calls it (tokenizer(queries, documents, padding=True,
  truncation="longest_first", max_length=N)), on each pair alone; checked here to equal the same
  pair inside a padded batch (padding removed by the attention mask).
- planes: every non-surrogate code point, in chunks of CHUNK, each written as cell(c) (doubled,
  next to a letter, a digit, whitespace, combining marks, CRLF) and run through the whole
  tokenizer without special tokens: sha256 (first 16 hex digits) of the comma-joined ids per
  chunk; and `decomposed`, every multi-character canonical decomposition, with its hash.

--out DIR with --seed/--pairs other than the defaults makes "unseen" tokenizers of other sizes
and settings for a one-off check (scripts' output, not committed).
"""
import argparse
import hashlib
import json
import random
import unicodedata
from pathlib import Path

from tokenizers import AddedToken, Regex, Tokenizer, decoders, models, normalizers, pre_tokenizers, processors, trainers
from transformers import AutoTokenizer

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / 'test' / 'fixtures' / 'bytelevel'
QWEN2_PATTERN = r"""(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"""
CHUNK = 4096

LATIN = ['the', 'search', 'index', 'rerank', 'query', 'document', 'café', 'naïve', 'résumé', 'über', 'Straße', 'façade', 'São',
         'Ångström', 'Dvořák', 'Łódź', 'hybrid', 'vector', "don't", "it's", "WE'LL", "they'RE", "I'M", "you'VE", "she'D", 'ſtop']
CYRILLIC = ['поиск', 'документ', 'запрос', 'Москва', 'ёлка']
GREEK = ['αναζήτηση', 'έγγραφο', 'ΟΔΟΣ', 'Ἀθῆναι']
CJK = ['检索', '文档', '排序', '日本語', 'の', 'ランキング', '한국어', '검색', '中文分词']
ARABIC = ['بحث', 'وثيقة', 'العربية', 'مرحبا']
INDIC = ['हिन्दी', 'खोज', 'தமிழ்', 'ไทย', 'ภาษา']
EMOJI = ['😀', '🚀', '👍🏽', '🇫🇷', '👨\u200d👩\u200d👧', '❤️', '✨', '🏳️\u200d🌈', '🧑🏿\u200d💻']
CODE = ['def', 'fn', 'return', 'x = 1;', 'foo(bar)', '{"a": 2}', 'self.model', '=>', '::', '0x1F', '3.14159', '2026-11-26',
        'i++', '#include', '</div>', 'SELECT * FROM t;', 'a_b_c', 'CamelCase', '1234567890', '٣٤٥', '१२३', '²³', 'Ⅻ']
COMBINING = ['e\u0301', 'A\u030a', 'o\u0308\u0304', 'a\u0323\u0302', '\u1100\u1161\u11a8', 'ḍ\u0307', 'q\u0307\u0323',
             '\u0915\u093c', 'Å', 'Ω', '\u0041\u0327\u0301', 'ᄀ', '\u0b47\u0b3e', 'e\u0301\u0301', '\u05d0\u05b7']
RARE = ['ᚠᛇᚻ', '𓀀𓀁', 'ⴰⵣ', '\u061d', '\U00011070', '\ue000', '\U000f0000', '\ufdd0', '\uffff', '\u0007', '\u001b', '\u0085',
        '\ufeff', '\ufffd', '\u2028', '\u00ad', '\u200b', '\U0001FAE8', '\U00031350', '\u0378']
SPECIAL = ['<|im_start|>', '<|im_end|>', '<|endoftext|>', '<|endoftext|', '<|im_start|>user\n', '<think>', '</think>',
           '[CLS]', '[SEP]', '[MASK]', ' [MASK] ', '|||EMAIL_ADDRESS|||', 'Ġ', 'ĠĠ', '<0x0A>']
WHITESPACE = [' ', ' ', ' ', ' ', '  ', '   ', '\t', '\t\t', '\n', '\n\n', '\r\n', '\r\n\r\n', ' \n ', '\u3000', '\u00a0', ' \t ',
              '      ', '\r', '\x0b', '\x0c', '']


def random_text(rng, n_words):
    pools = [LATIN, CYRILLIC, GREEK, CJK, ARABIC, INDIC, EMOJI, CODE, COMBINING, RARE, SPECIAL]
    weights = [8, 2, 2, 2, 2, 2, 2, 4, 2, 1, 1]
    out = []
    for _ in range(n_words):
        out.append(rng.choice(rng.choices(pools, weights)[0]))
        out.append(rng.choice(WHITESPACE))
    text = ''.join(out)
    return text if rng.random() < 0.8 else text.strip()


ALPHABETS = ['abcdefghijklmnopqrstuvwxyzéèàüöäñç', 'абвгдеёжзийклмнопрстуфхцчшщъыьэюя', 'αβγδεζηθικλμνξοπρστυφχψω',
             '的一是不了人我在有他这中大来上个国到说们为子和你地出道也时年得就那要下以生会自着去之过家学对可她里后小么心多天而能好都然没日于起还发成事只作当想看文无开手十用主行方',
             '0123456789', 'אבגדהוזחטיכלמנסעפצקרשת']


def training_text(rng, lines, rich=False):
    pools = [LATIN, CYRILLIC, GREEK, CJK, ARABIC, INDIC, EMOJI, CODE, COMBINING]
    def word():
        if rich and rng.random() < 0.5:  # invented words, so that large vocabularies fill up
            return ''.join(rng.choice(rng.choice(ALPHABETS)) for _ in range(rng.randint(2, 9)))
        return rng.choice(rng.choice(pools))
    return [' '.join(word() for _ in range(rng.randint(3, 20))) for _ in range(lines)]


def make_pairs(rng, n, max_length):
    pairs = [('', ''), ('', 'a document'), ('a query', ''), ('<|endoftext|>', '<|im_start|>'), ('   ', '\r\n\t'),
             (' ' * 300, 'x' * 2000), ('👨\u200d👩\u200d👧' * 40, '1' * 500)]
    while len(pairs) < n:
        kind = rng.random()
        if kind < 0.2:  # both sides over the limit
            q, d = random_text(rng, rng.randint(max_length, 3 * max_length)), random_text(rng, rng.randint(max_length, 3 * max_length))
        elif kind < 0.35:  # one side over
            q, d = random_text(rng, rng.randint(1, 8)), random_text(rng, rng.randint(max_length, 4 * max_length))
        else:
            q, d = random_text(rng, rng.randint(0, 12)), random_text(rng, rng.randint(0, max_length // 2))
        pairs.append((q, d))
    return pairs


def build(shape, rng, vocab_size, variant):
    """A trained Tokenizer in `shape`, plus its tokenizer_config.json."""
    if shape in ('qwen3', 'mxbai-v2'):
        tok = Tokenizer(models.BPE(ignore_merges=variant.get('ignore_merges', False)))
        tok.normalizer = normalizers.NFC()
        tok.pre_tokenizer = pre_tokenizers.Sequence([
            pre_tokenizers.Split(Regex(QWEN2_PATTERN), variant.get('split_behavior', 'isolated'), invert=variant.get('invert', False)),
            pre_tokenizers.ByteLevel(add_prefix_space=variant.get('add_prefix_space', False), use_regex=False, trim_offsets=False),
        ])
        tok.decoder = decoders.ByteLevel()
        specials = ['<|endoftext|>', '<|im_start|>', '<|im_end|>']
    else:
        tok = Tokenizer(models.BPE(ignore_merges=variant.get('ignore_merges', False)))
        tok.normalizer = normalizers.NFC()
        tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=variant.get('add_prefix_space', False), use_regex=True, trim_offsets=True)
        tok.decoder = decoders.ByteLevel()
        specials = ['[UNK]', '[CLS]', '[SEP]', '[PAD]', '[MASK]']
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, min_frequency=1, special_tokens=specials,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False)
    tok.train_from_iterator(training_text(rng, 6000, rich=variant.get('rich', False)), trainer)
    if shape in ('qwen3', 'mxbai-v2'):
        tok.add_special_tokens([AddedToken(t, normalized=False, special=True) for t in specials])
        tok.add_tokens([AddedToken('<think>', normalized=False, special=False), AddedToken('</think>', normalized=False, special=False)])
        tok.post_processor = processors.ByteLevel(trim_offsets=False)
        if shape == 'mxbai-v2':
            tok.post_processor = processors.Sequence([processors.ByteLevel(trim_offsets=False)])
        config = {'tokenizer_class': variant.get('tokenizer_class', 'Qwen2Tokenizer'), 'pad_token': '<|endoftext|>', 'eos_token': '<|im_end|>',
                  'padding_side': 'left', 'model_max_length': 131072, 'clean_up_tokenization_spaces': False}
    else:
        tok.add_special_tokens([AddedToken('[MASK]', lstrip=True, normalized=False, special=True)])
        tok.add_tokens([AddedToken('|||EMAIL_ADDRESS|||', normalized=True, special=False)])
        cls, sep = tok.token_to_id('[CLS]'), tok.token_to_id('[SEP]')
        tok.post_processor = processors.TemplateProcessing(
            single='[CLS]:0 $A:0 [SEP]:0', pair='[CLS]:0 $A:0 [SEP]:0 $B:0 [SEP]:0', special_tokens=[('[CLS]', cls), ('[SEP]', sep)])
        config = {'tokenizer_class': 'PreTrainedTokenizerFast', 'cls_token': '[CLS]', 'sep_token': '[SEP]', 'pad_token': '[PAD]',
                  'mask_token': '[MASK]', 'unk_token': '[UNK]', 'model_max_length': 8192, 'clean_up_tokenization_spaces': True}
    return tok, config


def cell(c):
    # Hangul syllables decompose by algorithm, the same in every Unicode version (and in JavaScript).
    jamo = unicodedata.normalize('NFD', c) if 0xAC00 <= ord(c) <= 0xD7A3 else ''
    return f'{c}{c}x1{jamo} {c}\u0323\u0301\r\n'


def ids_hash(tok, text):
    ids = tok.encode(text, add_special_tokens=False).ids
    return hashlib.sha256(','.join(map(str, ids)).encode()).hexdigest()[:16]


def plane_hashes(tok):
    cps = [c for c in range(0x110000) if not 0xD800 <= c <= 0xDFFF]
    hashes = [ids_hash(tok, ''.join(cell(chr(c)) for c in cps[i:i + CHUNK])) for i in range(0, len(cps), CHUNK)]
    # Canonical decompositions (this Python's Unicode, newer than the crate's 9.0) for NFC to recompose, or not.
    decomposed = ' '.join(d for d in (unicodedata.normalize('NFD', chr(c)) for c in cps if not 0xAC00 <= c <= 0xD7A3) if len(d) > 1)
    return {'chunk': CHUNK, 'sha256_16': hashes, 'decomposed': decomposed, 'decomposed_sha256_16': ids_hash(tok, decomposed)}


def write(shape, out_dir, seed, n_pairs, max_length, vocab_size, variant, planes):
    rng = random.Random(seed)
    tok, config = build(shape, rng, vocab_size, variant)
    d = out_dir / shape
    d.mkdir(parents=True, exist_ok=True)
    tok.save(str(d / 'tokenizer.json'))
    raw = json.loads((d / 'tokenizer.json').read_text())
    if variant.get('string_merges', shape == 'mxbai-v2'):
        raw['model']['merges'] = [' '.join(m) for m in raw['model']['merges']]
    (d / 'tokenizer.json').write_text(json.dumps(raw, ensure_ascii=False, separators=(',', ':')))
    (d / 'tokenizer_config.json').write_text(json.dumps(config, indent=1))
    hf = AutoTokenizer.from_pretrained(str(d))
    pairs = make_pairs(rng, n_pairs, max_length)
    ids, types = [], []
    for q, doc in pairs:
        f = hf([q], [doc], padding=True, truncation='longest_first', max_length=max_length, return_token_type_ids=True)
        ids.append(f['input_ids'][0])
        types.append(f['token_type_ids'][0])
    for start in range(0, len(pairs), 32):  # the same ids inside a padded batch, as CrossEncoder.predict batches them
        chunk = pairs[start:start + 32]
        f = hf([q for q, _ in chunk], [doc for _, doc in chunk], padding=True, truncation='longest_first', max_length=max_length)
        for k, (row, mask) in enumerate(zip(f['input_ids'], f['attention_mask'])):
            assert [t for t, m in zip(row, mask) if m] == ids[start + k], (shape, start + k)
    fixture = {'shape': shape, 'max_length': max_length, 'seed': seed, 'variant': variant, 'pairs': pairs,
               'input_ids': ids, 'token_type_ids': types}
    if planes:
        fixture['planes'] = plane_hashes(tok)
    (out_dir / f'{shape}-pairs.json').write_text(json.dumps(fixture, ensure_ascii=False, separators=(',', ':')))
    cut = sum(len(i) == max_length for i in ids)
    print(f'{shape}: vocab {tok.get_vocab_size()}, {len(pairs)} pairs ({cut} cut at {max_length}) -> {d}')


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('--out', default=str(OUT))
    ap.add_argument('--seed', type=int, default=1612)
    ap.add_argument('--pairs', type=int, default=320)
    ap.add_argument('--unseen', action='store_true', help='other sizes and settings, for a one-off check')
    args = ap.parse_args()
    out = Path(args.out)
    if not args.unseen:
        write('qwen3', out, args.seed, args.pairs, 96, 1200, {}, True)
        write('mxbai-v2', out, args.seed + 1, args.pairs, 64, 900, {}, False)
        write('modernbert', out, args.seed + 2, args.pairs, 80, 1000, {}, True)
        return
    rng = random.Random(args.seed)
    for shape in ('qwen3', 'mxbai-v2', 'modernbert'):
        variant = {'ignore_merges': rng.random() < 0.5, 'add_prefix_space': rng.random() < 0.5, 'string_merges': rng.random() < 0.5,
                   'split_behavior': rng.choice(['isolated', 'removed', 'merged_with_previous', 'merged_with_next', 'contiguous']),
                   'invert': rng.random() < 0.2, 'rich': True,
                   # Qwen2Tokenizer rebuilds the pipeline in transformers 5; PreTrainedTokenizerFast runs the file as it is.
                   'tokenizer_class': rng.choice(['Qwen2Tokenizer', 'PreTrainedTokenizerFast'])}
        write(shape, out, rng.randrange(1 << 30), args.pairs, rng.choice([33, 57, 128, 200]), rng.choice([300, 700, 2500, 6000]), variant, False)


if __name__ == '__main__':
    main()
