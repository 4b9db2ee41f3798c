"""The plain ONNX graph of a sequence classifier as the scripts that make decoder models export it (the fixtures in
make_decoder_fixtures.py, the bench model in make_bench_decoder.py): logits [batch, labels] from input_ids and
attention_mask, dynamic batch and sequence axes, opset 17, TorchScript exporter."""
import torch


def export_onnx(model, path, example_len=12, vocab=100):
    class Logits(torch.nn.Module):
        def __init__(self, m):
            super().__init__()
            self.m = m

        def forward(self, input_ids, attention_mask):
            return self.m(input_ids=input_ids, attention_mask=attention_mask).logits

    ids = torch.randint(5, vocab, (2, example_len))
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.onnx.export(
        Logits(model), (ids, torch.ones_like(ids)), str(path),
        input_names=['input_ids', 'attention_mask'], output_names=['logits'],
        dynamic_axes={'input_ids': {0: 'batch', 1: 'sequence'}, 'attention_mask': {0: 'batch', 1: 'sequence'}, 'logits': {0: 'batch'}},
        opset_version=17, dynamo=False)


def to_external_data(path):
    """As Hub repos of large models ship it: the graph in model.onnx, its weights in model.onnx_data."""
    import onnx
    m = onnx.load(str(path))
    onnx.save_model(m, str(path), save_as_external_data=True, all_tensors_to_one_file=True, location=f'{path.name}_data', size_threshold=1024)
