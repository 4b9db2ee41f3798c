#!/usr/bin/env python3
"""Writes src/tokenizer/unicode-tables.ts from the data the Rust `tokenizers` crate is built with.

The Rust BERT normalizer and pre-tokenizer classify characters with the tables of the
`unicode_categories` crate 0.1.1 (generated from an old UnicodeData.txt), and strip accents
after NFD from `unicode-normalization-alignments` 0.1.12 (Unicode 9.0). Characters assigned
since then are neither controls, marks nor punctuation there, and do not decompose, so a
classifier built on the current Unicode tables (JavaScript's \\p{...}, String.normalize)
strips or splits characters that Rust keeps in a word.

Inputs are the crates' own generated tables (tables.rs). By default they are read from git
clones of the two repositories in the ignored .cache/src/ (git clone https://github.com/swgillespie/unicode-categories
.cache/src/unicode-categories; git clone https://github.com/n1t0/unicode-normalization .cache/src/unicode-normalization),
at the published revisions:

    python3 scripts/gen_unicode_tables.py \
        [--categories PATH_TO/unicode-categories/src/tables.rs] \
        [--normalization PATH_TO/unicode-normalization/src/tables.rs]

Only the data is taken (code point lists); no code.
"""
import argparse
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / 'src' / 'tokenizer' / 'unicode-tables.ts'

# unicode_categories 0.1.1 on crates.io is commit 92bb246 ("0.1.0 -> 0.1.1"); later commits
# (Unicode 14 update) were never published under a version tokenizers can pick.
CATEGORIES_GIT = (str(ROOT / '.cache' / 'src' / 'unicode-categories'), '92bb24621c201261662c96f8f884050065dc2856')
# unicode-normalization-alignments 0.1.12, the `0.1` that tokenizers depends on.
NORMALIZATION_GIT = (str(ROOT / '.cache' / 'src' / 'unicode-normalization'), 'HEAD')


def read_source(path, git):
    if path:
        return Path(path).read_text()
    repo, rev = git
    return subprocess.run(['git', '-C', repo, 'show', f'{rev}:src/tables.rs'], check=True, capture_output=True, text=True).stdout


def char_table(src, name):
    m = re.search(r'pub static ' + name + r' : &\'static \[char\] = &\[(.*?)\];', src, re.S)
    if not m:
        sys.exit(f'table {name} not found')
    return [int(h, 16) for h in re.findall(r"'\\u\{([0-9A-Fa-f]+)\}'", m.group(1))]


def ranges(cps):
    out = []
    for cp in sorted(set(cps)):
        if out and out[-1][1] == cp - 1:
            out[-1][1] = cp
        else:
            out.append([cp, cp])
    return out


def first_last_ranges(cps):
    """Tables list a UnicodeData <..., First>/<..., Last> block by its two ends; the crate
    matches the whole block (private use planes), so pair them up."""
    cps = sorted(cps)
    if len(cps) % 2:
        sys.exit('private use table is not a list of block ends')
    return [[cps[i], cps[i + 1]] for i in range(0, len(cps), 2)]


def flat(rs):
    return [x for r in rs for x in r]


def ts_array(name, values, doc):
    lines = [f'/** {doc} */', f'export const {name}: readonly number[] = [']
    row = []
    for v in values:
        row.append(f'0x{v:x}')
        if len(row) == 12:
            lines.append('  ' + ', '.join(row) + ',')
            row = []
    if row:
        lines.append('  ' + ', '.join(row) + ',')
    lines.append('];')
    return '\n'.join(lines)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('--categories')
    ap.add_argument('--normalization')
    args = ap.parse_args()
    cat = read_source(args.categories, CATEGORIES_GIT)
    norm = read_source(args.normalization, NORMALIZATION_GIT)

    # `is_other()`: Cc, Cf and Co (Cn is not in the crate's tables at all).
    control = ranges(char_table(cat, 'OTHER_CONTROL') + char_table(cat, 'OTHER_FORMAT'))
    control = sorted(control + first_last_ranges(char_table(cat, 'OTHER_PRIVATE_USE')))
    nonspacing = ranges(char_table(cat, 'MARK_NONSPACING'))
    punct = ranges(sum((char_table(cat, t) for t in (
        'PUNCTUATION_CONNECTOR', 'PUNCTUATION_DASH', 'PUNCTUATION_CLOSE', 'PUNCTUATION_FINAL_QUOTE',
        'PUNCTUATION_INITIAL_QUOTE', 'PUNCTUATION_OTHER', 'PUNCTUATION_OPEN')), []))

    m = re.search(r'UNICODE_VERSION: \(u64, u64, u64\) = \((\d+), (\d+), (\d+)\)', norm)
    version = '.'.join(m.groups())
    m = re.search(r'CANONICAL_COMBINING_CLASS_KV: &\[u32\] = &\[(.*?)\];', norm, re.S)
    ccc = sorted((kv >> 8, kv & 0xff) for kv in (int(h, 16) for h in re.findall(r'0x([0-9A-Fa-f]+)', m.group(1))))
    ccc_runs = []  # [start, end, class]
    for cp, cls in ccc:
        if ccc_runs and ccc_runs[-1][1] == cp - 1 and ccc_runs[-1][2] == cls:
            ccc_runs[-1][1] = cp
        else:
            ccc_runs.append([cp, cp, cls])
    m = re.search(r'CANONICAL_DECOMPOSED_KV: &\[\(u32, &\'static \[char\]\)\] = &\[(.*?)\n\];', norm, re.S)
    decomp = sorted(
        (int(k, 16), [int(h, 16) for h in re.findall(r"'\\u\{([0-9A-Fa-f]+)\}'", v)])
        for k, v in re.findall(r'\(0x([0-9a-fA-F]+), &\[(.*?)\]\)', m.group(1)))
    decomp_flat = []
    for cp, seq in decomp:
        decomp_flat += [cp, len(seq), *seq]

    parts = [
        '// Generated by scripts/gen_unicode_tables.py from the tables of the Rust crates that the',
        '// `tokenizers` crate classifies characters with; do not edit. Ranges are inclusive [start, end] pairs.',
        '',
        ts_array('CONTROL_RANGES', flat(control), 'Cc, Cf and Co in unicode_categories 0.1.1 (`is_other()`).'),
        '',
        ts_array('NONSPACING_MARK_RANGES', flat(nonspacing), 'Mn in unicode_categories 0.1.1.'),
        '',
        ts_array('PUNCTUATION_RANGES', flat(punct), 'Pc, Pd, Pe, Pf, Pi, Po and Ps in unicode_categories 0.1.1.'),
        '',
        f"export const NFD_UNICODE_VERSION = '{version}';",
        '',
        ts_array('COMBINING_CLASS_RUNS', flat(ccc_runs), f'[start, end, class] triples: non-zero canonical combining classes, Unicode {version}.'),
        '',
        ts_array('CANONICAL_DECOMPOSITIONS', decomp_flat,
                 f'[code point, n, ...n code points] records: full canonical decompositions, Unicode {version} (Hangul syllables are algorithmic).'),
        '',
    ]
    OUT.write_text('\n'.join(parts))
    print(f'{OUT.relative_to(ROOT)}: {len(control)} control, {len(nonspacing)} Mn, {len(punct)} punctuation ranges; '
          f'{len(ccc)} combining classes, {len(decomp)} decompositions (Unicode {version})')


if __name__ == '__main__':
    main()
