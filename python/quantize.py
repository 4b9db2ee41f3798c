"""The int8 variant's quantization, in one place: every graph `--variant int8` serves (onnx/model_quantized.onnx,
and a decoder's onnx/model_past_quantized.onnx) is made with these settings, so that the server's load check can
hold the two to the same tensors, and the fixtures and the bench model are quantized as finetune quantizes.
"""
import os


def quantize_int8(src, dst):
    """Dynamic int8: signed 8-bit weights per tensor, activations scaled at run time. Weights stored beside the
    graph (external data) when the fp32 graph's are."""
    from onnxruntime.quantization import QuantType, quantize_dynamic
    external = any(os.path.exists(src + suffix) for suffix in ("_data", ".data"))
    quantize_dynamic(src, dst, weight_type=QuantType.QInt8, use_external_data_format=external)
