#!/usr/bin/env python3
"""A Qwen3ForSequenceClassification with Qwen3-Reranker-0.6B's layer shape (hidden 1024, 16 query /
8 key-value heads of 128, MLP 3072) but 2 of its 28 layers and a 1000-token vocabulary, exported to
ONNX as the fixtures are, for scripts/long-context.ts to measure time and memory per pair length.

    .venv-finetune/bin/python scripts/make_long_context_model.py /tmp/qwen3-0.6b-2layers
"""
import json
import sys
from pathlib import Path

import torch
from transformers import Qwen3Config, Qwen3ForSequenceClassification

sys.path.insert(0, str(Path(__file__).resolve().parent))
from make_decoder_fixtures import export_onnx  # noqa: E402

out = Path(sys.argv[1])
out.mkdir(parents=True, exist_ok=True)
torch.manual_seed(0)
config = Qwen3Config(vocab_size=1000, hidden_size=1024, intermediate_size=3072, num_hidden_layers=2, num_attention_heads=16,
                     num_key_value_heads=8, head_dim=128, max_position_embeddings=40960, pad_token_id=999, num_labels=1,
                     tie_word_embeddings=False, rope_theta=1000000.0)
model = Qwen3ForSequenceClassification(config).eval()
model.config.save_pretrained(str(out))
export_onnx(model, out / 'onnx' / 'model.onnx')
print(json.dumps({'dir': str(out), 'params': sum(p.numel() for p in model.parameters())}))
