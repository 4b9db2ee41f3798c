#!/usr/bin/env python3
"""Makes the decoder and ModernBERT fixtures: tiny random models in the shapes of the rerankers
people pick now, with byte-level BPE tokenizers trained here, exported to ONNX, and references.

    .venv-finetune/bin/python scripts/make_decoder_fixtures.py

- test/fixtures/qwen3-tiny: Qwen3ForSequenceClassification as tomaarsen/Qwen3-Reranker-0.6B-seq-cls
  ships it (Qwen2 regex Split + ByteLevel, NFC, ByteLevel post-processor, pad <|endoftext|> whose id
  is not 0, tokenizer_config with padding_side left and model_max_length 131072), its ONNX weights
  stored as external data (onnx/model.onnx + onnx/model.onnx_data), as large Hub exports are.
- test/fixtures/mxbai-v2-tiny: Qwen2ForSequenceClassification, one label, as the mxbai-rerank-v2
  seq-cls conversions are (same tokenizer shape).
- Both decoder fixtures also carry their --variant int8 files (export_int8): onnx/model_quantized.onnx
  and onnx/model_past_quantized.onnx, dynamic int8 as finetune writes them.
- test/fixtures/modernbert-tiny: ModernBertForSequenceClassification (gte-reranker-modernbert shape:
  ByteLevel pre-tokenizer with its regex, TemplateProcessing [CLS] A [SEP] B [SEP], mean pooling),
  local attention window 16, smaller than most pairs.

test/fixtures/<name>-parity.json holds, per pair:
- pairs[i] = [query, document]; `max_length` the truncation length used (CrossEncoder max_length)
- raw.input_ids[i]: CrossEncoder.preprocess's ids for the pair alone (no prompt); raw.scores[i] /
  raw.logits[i]: CrossEncoder.predict on the pair alone (sigmoid / identity). Pairs with no tokens at
  all are null (the model cannot score them; the server refuses them with one line).
- For qwen3-tiny, `qwen3_reranker`: ids from the Qwen3-Reranker model card's process_inputs
  (prefix + format_instruction truncated to max_length - prefix - suffix + suffix) with the card's
  default instruction, `instruction` pairs with another one, and logits of the seq-cls model on
  those ids alone. For mxbai-v2-tiny, `mxbai_rerank_v2`: ids from the mxbai-rerank package's
  prepare_inputs (v2), with and without instruction.
"""
import json
import random
import shutil
import sys
from pathlib import Path

import numpy as np
import torch
from sentence_transformers import CrossEncoder

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / 'python'))
from decoder_past import export_with_past, quantize_past  # noqa: E402
from quantize import quantize_int8  # noqa: E402
from tokenizers import AddedToken, Regex, Tokenizer, decoders, models, normalizers, pre_tokenizers, processors, trainers

sys.path.insert(0, str(Path(__file__).resolve().parent))
from onnx_export import export_onnx, to_external_data  # noqa: E402,F401  (make_long_context_model.py imports export_onnx from here)
from make_xlmr_fixture import ALPHABETS, ARABIC, CJK, CODE, CYRILLIC, EMOJI, GREEK, LATIN, NFKC, RARE  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = ROOT / 'test' / 'fixtures'
SEED = 1216
MAX_LENGTH = 128
TEMPLATE_MAX_LENGTH = 256

QWEN2_PATTERN = r"""(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"""

# Qwen3-Reranker model card (Hugging Face, Qwen/Qwen3-Reranker-0.6B, "Transformers Usage").
QWEN3_PREFIX = '<|im_start|>system\nJudge whether the Document meets the requirements based on the Query and the Instruct provided. Note that the answer can only be "yes" or "no".<|im_end|>\n<|im_start|>user\n'
QWEN3_SUFFIX = '<|im_end|>\n<|im_start|>assistant\n<think>\n\n</think>\n\n'
QWEN3_DEFAULT_INSTRUCTION = 'Given a web search query, retrieve relevant passages that answer the query'

# mixedbread-ai/mxbai-rerank, mxbai_rerank/mxbai_rerank_v2.py (MxbaiRerankV2 class attributes).
MXBAI_SEP = '\n'
MXBAI_TASK = 'You are a search relevance expert who evaluates how well documents match search queries. For each query-document pair, carefully analyze the semantic relationship between them, then provide your binary relevance judgment (0 for not relevant, 1 for relevant).\nRelevance:'
MXBAI_PREFIX = '<|im_start|>system\nYou are Qwen, created by Alibaba Cloud. You are a helpful assistant.<|im_end|>\n<|im_start|>user\n'
MXBAI_SUFFIX = '<|im_end|>\n<|im_start|>assistant\n'

QWEN_SPECIAL = ['<|endoftext|>', '<|im_start|>', '<|im_end|>']
QWEN_ADDED = ['<think>', '</think>']
MODERNBERT_SPECIAL = ['[UNK]', '[CLS]', '[SEP]', '[PAD]', '[MASK]']
SPECIAL_IN_TEXT = ['<|endoftext|>', '<|im_start|>', '<|im_end|>', '<think>', '</think>', '<|im_start', 'im_end|>', '[CLS]', '[SEP]',
                   '[MASK]', '[PAD]', 'Ġ', 'Ċ', 'ĠĠ', '<Query>:', '<Document>:']
DIGITS = ['0', '42', '1234567890', '3.14159', '٣٤٥', '१२३', '１２３', '²³', '0x1F', '1e-9', '2026-12-01', '１0']
COMBINING = ['e\u0301', 'a\u0308', 'n\u0303', 'A\u030a', 'ḁ\u0300', '\u0301', 'o\u0302\u0323', 'ก\u0e34\u0e4d', 'क\u094d\u0937']
WHITESPACE = [' ', ' ', ' ', '  ', '   ', '\t', '\n', '\r\n', '\r', '\n\n', ' \t ', '\u3000', '\u00a0', '', '    ']


def random_word(rng):
    alphabet = rng.choice(ALPHABETS)
    return ''.join(rng.choice(alphabet) for _ in range(rng.randint(1, 8)))


def training_text(rng, lines=6000):
    pools = [LATIN, CYRILLIC, GREEK, CJK, ARABIC, EMOJI, CODE, NFKC, DIGITS, COMBINING]
    out = [QWEN3_PREFIX, QWEN3_SUFFIX, QWEN3_DEFAULT_INSTRUCTION, MXBAI_TASK, MXBAI_PREFIX] * 30
    for _ in range(lines):
        out.append(' '.join(rng.choice(rng.choice(pools)) if rng.random() < 0.6 else random_word(rng) for _ in range(rng.randint(3, 15))))
    return out


def random_text(rng, n_words):
    pools = [LATIN, CYRILLIC, GREEK, CJK, ARABIC, EMOJI, CODE, NFKC, RARE, SPECIAL_IN_TEXT, DIGITS, COMBINING]
    weights = [6, 2, 2, 2, 2, 1.5, 3, 1, 1, 0.6, 1.5, 1]
    parts = []
    for _ in range(n_words):
        w = rng.choice(rng.choices(pools, weights)[0])
        if rng.random() < 0.15:
            w = w + rng.choice(rng.choices(pools, weights)[0])
        if rng.random() < 0.05:
            w = w.upper()
        parts.append(w)
        parts.append(rng.choice(WHITESPACE))
    text = ''.join(parts)
    if rng.random() < 0.1:
        text = rng.choice(WHITESPACE) + text
    return text


def make_pairs(rng):
    pairs = [['', ''], ['', 'document only'], ['query only', ''], ['   ', '\t\n'], ['\r\n\r\n', '  \t  '],
             ['<|endoftext|>', '<|im_end|>'], ['a<|im_start|>b', 'x <think>y</think> z'], ['[CLS] q [SEP]', '[MASK] d [PAD]'],
             ['😀👍🏽🇫🇷', '👨‍👩‍👧 ❤️ 🏳️‍🌈'], ['e\u0301 n\u0303 ḁ\u0300', 'ก\u0e34\u0e4d क\u094d\u0937'], ['1234567890123', '٣٤٥ १२३ １２３'],
             ['ᚠᛇᚻ ꦲꦏ 𓀀', '\ue000\U000f0000\ufdd0'], ['a\u0007b\u001bc', 'x\u0085y\ufeffz\u200bw'], ["it's we'LL", "I'M 'S 'd"]]
    for i in range(300):
        kind = i % 20
        if kind == 0:  # both sides over the limit
            pairs.append([random_text(rng, rng.randint(100, 200)), random_text(rng, rng.randint(100, 260))])
        elif kind == 1:
            pairs.append([random_text(rng, rng.randint(100, 220)), random_text(rng, rng.randint(0, 15))])
        elif kind == 2:
            pairs.append([random_text(rng, rng.randint(0, 6)), random_text(rng, rng.randint(120, 300))])
        elif kind == 3:
            pairs.append(['', random_text(rng, 12)] if i % 40 == 3 else [random_text(rng, 6), ''])
        else:
            pairs.append([random_text(rng, rng.randint(1, 10)), random_text(rng, rng.randint(5, 45))])
    return pairs


def qwen_tokenizer(rng):
    tok = Tokenizer(models.BPE(unk_token=None, byte_fallback=False, fuse_unk=False))
    tok.normalizer = normalizers.NFC()
    tok.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Split(Regex(QWEN2_PATTERN), behavior='isolated', invert=False),
        pre_tokenizers.ByteLevel(add_prefix_space=False, trim_offsets=False, use_regex=False)])
    tok.decoder = decoders.ByteLevel()
    tok.train_from_iterator(training_text(rng), trainers.BpeTrainer(
        vocab_size=900, initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False))
    tok.post_processor = processors.ByteLevel(add_prefix_space=False, trim_offsets=False, use_regex=False)
    # As in Qwen's tokenizer.json: the special tokens come after the merges' vocabulary.
    tok.add_special_tokens([AddedToken(t, special=True, normalized=False) for t in QWEN_SPECIAL])
    tok.add_tokens([AddedToken(t, special=False, normalized=False) for t in QWEN_ADDED])
    return tok


def modernbert_tokenizer(rng):
    tok = Tokenizer(models.BPE(unk_token=None, byte_fallback=False))
    tok.normalizer = normalizers.NFC()
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, trim_offsets=True, use_regex=True)
    tok.decoder = decoders.ByteLevel()
    tok.train_from_iterator(training_text(rng), trainers.BpeTrainer(
        vocab_size=900, initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False))
    tok.add_special_tokens([AddedToken(t, special=True, normalized=False) for t in MODERNBERT_SPECIAL])
    cls, sep = tok.token_to_id('[CLS]'), tok.token_to_id('[SEP]')
    tok.post_processor = processors.TemplateProcessing(
        single='[CLS]:0 $A:0 [SEP]:0', pair='[CLS]:0 $A:0 [SEP]:0 $B:0 [SEP]:0', special_tokens=[('[CLS]', cls), ('[SEP]', sep)])
    return tok


def logits_alone(model, ids):
    with torch.no_grad():
        t = torch.tensor([ids])
        return float(model(input_ids=t, attention_mask=torch.ones_like(t)).logits[0][0])


def raw_references(dir_, pairs, max_length):
    ce = CrossEncoder(str(dir_), device='cpu', max_length=max_length)
    ids, logits, scores = [], [], []
    for q, d in pairs:
        features = ce.preprocess([[q, d]])
        row = features['input_ids'][0][features['attention_mask'][0].bool()].tolist()
        if not row:
            ids.append(None), logits.append(None), scores.append(None)
            continue
        ids.append(row)
        logits.append(float(ce.predict([[q, d]], activation_fn=torch.nn.Identity())[0]))
        scores.append(float(ce.predict([[q, d]])[0]))
    return {'input_ids': ids, 'logits': logits, 'scores': scores}


def qwen3_process_inputs(tokenizer, text, max_length):
    """The Qwen3-Reranker card's process_inputs for one formatted pair."""
    prefix_tokens = tokenizer.encode(QWEN3_PREFIX, add_special_tokens=False)
    suffix_tokens = tokenizer.encode(QWEN3_SUFFIX, add_special_tokens=False)
    inputs = tokenizer([text], padding=False, truncation='longest_first', return_attention_mask=False,
                       max_length=max_length - len(prefix_tokens) - len(suffix_tokens))
    return prefix_tokens + inputs['input_ids'][0] + suffix_tokens


def qwen3_format(instruction, query, doc):
    return '<Instruct>: {instruction}\n<Query>: {query}\n<Document>: {doc}'.format(instruction=instruction, query=query, doc=doc)


def mxbai_prepare(tokenizer, query, document, instruction, max_length):
    """mxbai-rerank's MxbaiRerankV2.prepare_inputs for one pair; max_length is the whole sequence here
    (the package's max_length is the room between its static tokens)."""
    def ids(x, **kw):
        return tokenizer(x, return_tensors=None, add_special_tokens=False, **kw)['input_ids']
    task, sep, prefix, suffix = ids(MXBAI_TASK), ids(MXBAI_SEP), ids(MXBAI_PREFIX), ids(MXBAI_SUFFIX)
    room = max_length - (len(prefix) + len(task) + len(suffix) + len(sep))
    query_prompt = f'query: {query}'
    if instruction:
        query_prompt = f'instruction: {instruction}{MXBAI_SEP}{query_prompt}'
    q = ids(query_prompt, max_length=room * 3 // 4, truncation=True)
    d = ids(f'document: {document}', max_length=room, truncation=True)
    # prepare_for_model(q, sep + d, truncation='only_second', max_length=room) (gone from transformers 5's
    # fast tokenizers): the second sequence loses tokens at its end until the pair fits.
    second = (sep + d)[:max(0, room - len(q))]
    return prefix + q + second + sep + task + suffix


def write_tokenizer_files(tok, dir_, config):
    from transformers import PreTrainedTokenizerFast
    dir_.mkdir(parents=True, exist_ok=True)
    tok.save(str(dir_ / 'tokenizer.json'))
    (dir_ / 'tokenizer_config.json').write_text(json.dumps(config, indent=2))
    return PreTrainedTokenizerFast.from_pretrained(str(dir_))


def build_qwen(name, rng, pairs, arch):
    from transformers import Qwen2Config, Qwen2ForSequenceClassification, Qwen3Config, Qwen3ForSequenceClassification
    dir_ = FIXTURES / name
    if dir_.exists():
        shutil.rmtree(dir_)
    tok = qwen_tokenizer(rng)
    pad = tok.token_to_id('<|endoftext|>')
    added = {str(tok.token_to_id(t)): {'content': t, 'lstrip': False, 'rstrip': False, 'normalized': False, 'single_word': False,
                                       'special': t in QWEN_SPECIAL} for t in QWEN_SPECIAL + QWEN_ADDED}
    hf_tok = write_tokenizer_files(tok, dir_, {
        'tokenizer_class': 'Qwen2Tokenizer', 'model_max_length': 131072, 'padding_side': 'left', 'pad_token': '<|endoftext|>',
        'eos_token': '<|im_end|>', 'bos_token': None, 'unk_token': None, 'clean_up_tokenization_spaces': False,
        'split_special_tokens': False, 'added_tokens_decoder': added, 'errors': 'replace'})
    common = dict(vocab_size=tok.get_vocab_size(), hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=4,
                  num_key_value_heads=2, max_position_embeddings=40960, pad_token_id=pad, eos_token_id=tok.token_to_id('<|im_end|>'),
                  num_labels=1, tie_word_embeddings=False, initializer_range=0.3, rope_theta=1000000.0)
    if arch == 'qwen3':
        config = Qwen3Config(head_dim=8, **common)
        model = Qwen3ForSequenceClassification(config).eval()
    else:
        config = Qwen2Config(**common)
        model = Qwen2ForSequenceClassification(config).eval()
    model.save_pretrained(str(dir_))
    export_onnx(model, dir_ / 'onnx' / 'model.onnx')
    if arch == 'qwen3':
        to_external_data(dir_ / 'onnx' / 'model.onnx')
    # The prefix-reuse graph, as finetune writes it beside model.onnx.
    print(f'{name}: model_past.onnx max |Δlogit| vs PyTorch {export_with_past(model, str(dir_ / "onnx")):.2e}')
    export_int8(dir_ / 'onnx')
    out = {'about': 'generated by scripts/make_decoder_fixtures.py; see its docstring', 'max_length': MAX_LENGTH,
           'pad_token_id': pad, 'pairs': pairs, 'raw': raw_references(dir_, pairs, MAX_LENGTH)}
    if arch == 'qwen3':
        other = 'Given a code question, retrieve the function that answers it'
        for key, instruction in [('qwen3_reranker', QWEN3_DEFAULT_INSTRUCTION), ('qwen3_reranker_instruction', other)]:
            ids = [qwen3_process_inputs(hf_tok, qwen3_format(instruction, q, d), TEMPLATE_MAX_LENGTH) for q, d in pairs]
            out[key] = {'instruction': instruction, 'max_length': TEMPLATE_MAX_LENGTH, 'input_ids': ids,
                        'logits': [logits_alone(model, x) for x in ids]}
        # The seq-cls card's CrossEncoder usage (prompt pieces on each side of the pair) gives the same ids when nothing is cut.
        ce = CrossEncoder(str(dir_), device='cpu', max_length=100000)
        same = 0
        for (q, d), x in zip(pairs, out['qwen3_reranker']['input_ids']):
            if len(x) >= TEMPLATE_MAX_LENGTH:
                continue
            f = ce.preprocess([[f'{QWEN3_PREFIX}<Instruct>: {QWEN3_DEFAULT_INSTRUCTION}\n<Query>: {q}\n', f'<Document>: {d}{QWEN3_SUFFIX}']])
            same += f['input_ids'][0].tolist() == x
        print(f'{name}: seq-cls card CrossEncoder prompt ids == process_inputs ids on {same} uncut pairs')
    else:
        other = 'You are an expert for source code.'
        for key, instruction in [('mxbai_rerank_v2', None), ('mxbai_rerank_v2_instruction', other)]:
            ids = [mxbai_prepare(hf_tok, q, d, instruction, TEMPLATE_MAX_LENGTH) for q, d in pairs]
            out[key] = {'instruction': instruction, 'max_length': TEMPLATE_MAX_LENGTH, 'input_ids': ids,
                        'logits': [logits_alone(model, x) for x in ids]}
    return dir_, out


def build_modernbert(rng, pairs):
    from transformers import ModernBertConfig, ModernBertForSequenceClassification
    dir_ = FIXTURES / 'modernbert-tiny'
    if dir_.exists():
        shutil.rmtree(dir_)
    tok = modernbert_tokenizer(rng)
    write_tokenizer_files(tok, dir_, {
        'tokenizer_class': 'PreTrainedTokenizerFast', 'model_max_length': 8192, 'cls_token': '[CLS]', 'sep_token': '[SEP]',
        'pad_token': '[PAD]', 'mask_token': '[MASK]', 'unk_token': '[UNK]', 'clean_up_tokenization_spaces': True,
        'model_input_names': ['input_ids', 'attention_mask']})
    config = ModernBertConfig(
        vocab_size=tok.get_vocab_size(), hidden_size=32, intermediate_size=48, num_hidden_layers=3, num_attention_heads=4,
        max_position_embeddings=8192, local_attention=16, global_attn_every_n_layers=3, pad_token_id=tok.token_to_id('[PAD]'),
        cls_token_id=tok.token_to_id('[CLS]'), sep_token_id=tok.token_to_id('[SEP]'), bos_token_id=tok.token_to_id('[CLS]'),
        eos_token_id=tok.token_to_id('[SEP]'), num_labels=1, classifier_pooling='mean', initializer_range=0.3,
        attn_implementation='eager')
    model = ModernBertForSequenceClassification(config).eval()
    model.save_pretrained(str(dir_))
    export_onnx(model, dir_ / 'onnx' / 'model.onnx', example_len=40)
    return dir_, {'about': 'generated by scripts/make_decoder_fixtures.py; see its docstring', 'max_length': MAX_LENGTH,
                  'pad_token_id': config.pad_token_id, 'pairs': pairs, 'raw': raw_references(dir_, pairs, MAX_LENGTH)}


def export_int8(onnx_dir):
    """The --variant int8 files as finetune writes them: model_quantized.onnx and the quantized prefix graph."""
    quantize_int8(str(onnx_dir / 'model.onnx'), str(onnx_dir / 'model_quantized.onnx'))
    quantize_past(str(onnx_dir))


def check_onnx(dir_, out):
    import onnxruntime as ort
    session = ort.InferenceSession(str(dir_ / 'onnx' / 'model.onnx'))
    worst = 0.0
    for key in [k for k in out if isinstance(out[k], dict) and 'input_ids' in out[k]]:
        for ids, logit in zip(out[key]['input_ids'], out[key]['logits']):
            if ids is None:
                continue
            x = np.array([ids], dtype=np.int64)
            worst = max(worst, abs(float(session.run(['logits'], {'input_ids': x, 'attention_mask': np.ones_like(x)})[0][0][0]) - logit))
    return worst


def main():
    only = sys.argv[1:]
    for name, build in [('qwen3-tiny', lambda rng, p: build_qwen('qwen3-tiny', rng, p, 'qwen3')),
                        ('mxbai-v2-tiny', lambda rng, p: build_qwen('mxbai-v2-tiny', rng, p, 'qwen2')),
                        ('modernbert-tiny', build_modernbert)]:
        if only and name not in only:
            continue
        rng = random.Random(f'{SEED}-{name}')
        torch.manual_seed(SEED)
        pairs = make_pairs(rng)
        dir_, out = build(rng, pairs)
        parity = FIXTURES / f'{name}-parity.json'
        parity.write_text(json.dumps(out, ensure_ascii=False, separators=(',', ':')))
        size = sum(f.stat().st_size for f in dir_.rglob('*') if f.is_file())
        raw = out['raw']['input_ids']
        print(f'{name}: {size} bytes, parity {parity.stat().st_size} bytes; {len(pairs)} pairs, '
              f'{sum(x is not None and len(x) == MAX_LENGTH for x in raw)} cut at {MAX_LENGTH}, {sum(x is None for x in raw)} empty; '
              f'max |torch - ort python| {check_onnx(dir_, out):.2e}')


if __name__ == '__main__':
    main()
