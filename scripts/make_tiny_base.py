#!/usr/bin/env python3
"""Build a tiny random BERT cross-encoder checkpoint (2 layers, hidden 64, one label) for offline tests.

    python scripts/make_tiny_base.py --tokenizer test/fixtures/agro --out /tmp/tiny-base

The tokenizer is loaded from a local directory (tokenizer.json / vocab.txt), so nothing is downloaded.
The weights are random: the checkpoint only proves that python/finetune.py trains and exports.
"""
import argparse
import json
import os
import sys

ACTIVATIONS = {"identity": "torch.nn.modules.linear.Identity", "sigmoid": "torch.nn.modules.activation.Sigmoid"}


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--tokenizer", required=True, help="local directory with the tokenizer files")
    p.add_argument("--out", required=True, help="directory to write the checkpoint to")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--activation", choices=(*ACTIVATIONS, "none"), default="identity",
                   help="sentence_transformers.activation_fn written to config.json (none: leave it out)")
    args = p.parse_args(argv)

    import torch
    from transformers import AutoTokenizer, BertConfig, BertForSequenceClassification

    tok = AutoTokenizer.from_pretrained(args.tokenizer, local_files_only=True)
    config = BertConfig(vocab_size=len(tok), hidden_size=64, num_hidden_layers=2, num_attention_heads=4,
                        intermediate_size=128, max_position_embeddings=512, type_vocab_size=2,
                        pad_token_id=tok.pad_token_id or 0, num_labels=1)
    torch.manual_seed(args.seed)
    model = BertForSequenceClassification(config).eval()
    os.makedirs(args.out, exist_ok=True)
    model.save_pretrained(args.out)
    tok.model_max_length = min(tok.model_max_length, config.max_position_embeddings)
    tok.save_pretrained(args.out)

    if args.activation != "none":
        path = os.path.join(args.out, "config.json")
        with open(path, encoding="utf-8") as f:
            cfg = json.load(f)
        cfg["sentence_transformers"] = {"activation_fn": ACTIVATIONS[args.activation]}
        with open(path, "w", encoding="utf-8") as f:
            json.dump(cfg, f, indent=2)
            f.write("\n")
    params = sum(t.numel() for t in model.parameters())
    print(f"tiny cross-encoder ({params / 1e6:.1f} M parameters, vocab {len(tok)}) written to {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
