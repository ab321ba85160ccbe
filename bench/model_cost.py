"""``python -m bench.model_cost``: what one encode of the packaged MiniLM costs, by text length, on one thread.

Memory and knowledge bases are bound by this model (see ``bench.memory_rag``): a long session's request embeds
its new message, and its stored turn in the background. This prints, for texts of a few lengths, the CPU time
of one encode (ONNX Runtime, one intra-op thread, as the gateway runs it) and where a run's time goes by
operator (ONNX Runtime's profiler).

``--quantized`` also builds a dynamically quantized copy of the same weights in a temporary folder
(``onnxruntime.quantization.quantize_dynamic``: int8 ``MatMulInteger`` instead of the fp32 ``MatMul`` that the
packaged model's int8 weights are folded into at load) and compares its cost and its vectors (cosine to the
packaged model's). It needs the ``onnx`` package, which AILB does not depend on.
"""

from __future__ import annotations

import argparse
import collections
import json
import tempfile
import time
from pathlib import Path

import onnxruntime
from tokenizers import Tokenizer

from ailb.embeddings.encoders import Vectors, onnx_mean_pooled
from ailb.embeddings.models import DEFAULT_MODEL, resolve_model

WORDS = (5, 15, 40, 100, 400)  # 5 → ~10 tokens … 400 → the whole 256-token window
PROFILED_RUNS = 30


def session(path: Path, profile_prefix: str = "") -> onnxruntime.InferenceSession:
    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = 1
    options.inter_op_num_threads = 1
    options.log_severity_level = 3
    if profile_prefix:
        options.enable_profiling = True
        options.profile_file_prefix = profile_prefix
    return onnxruntime.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


class Encoder:
    def __init__(self, model: onnxruntime.InferenceSession, tokenizer: Tokenizer) -> None:
        self.model = model
        self.tokenizer = tokenizer
        self.inputs = {i.name for i in model.get_inputs()}

    def __call__(self, texts: list[str]) -> Vectors:
        return onnx_mean_pooled(self.model, self.inputs, self.tokenizer, texts)


def text_of(words: int) -> str:
    return " ".join("garden" if k % 3 == 0 else f"word{k}" for k in range(words))


def cpu_ms(encode: Encoder, text: str, repeats: int) -> float:
    for _ in range(3):
        encode([text])
    started = time.thread_time()
    for _ in range(repeats):
        encode([text])
    return (time.thread_time() - started) / repeats * 1000


def operator_shares(path: Path, tokenizer: Tokenizer, folder: Path) -> list[tuple[str, float]]:
    model = session(path, str(folder / "profile"))
    encode = Encoder(model, tokenizer)
    for _ in range(PROFILED_RUNS):
        encode([text_of(15)])
    events = json.loads(Path(model.end_profiling()).read_text())
    spent: collections.Counter[str] = collections.Counter()
    for event in events:
        if event.get("cat") == "Node" and event["name"].endswith("_kernel_time"):
            spent[event["args"]["op_name"]] += event["dur"]
    total = sum(spent.values()) or 1
    return [(name, share / total) for name, share in spent.most_common(5)]


def quantized_copy(path: Path, folder: Path) -> Path:
    from onnxruntime.quantization import QuantType, quantize_dynamic

    options = onnxruntime.SessionOptions()
    options.graph_optimization_level = onnxruntime.GraphOptimizationLevel.ORT_ENABLE_BASIC
    options.optimized_model_filepath = str(folder / "folded.onnx")  # the int8 weights folded to fp32
    onnxruntime.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    target = folder / "dynamic-int8.onnx"
    quantize_dynamic(str(folder / "folded.onnx"), str(target), weight_type=QuantType.QInt8, per_channel=True,
                     op_types_to_quantize=["MatMul"])  # fmt: skip
    return target


def main(quantized: bool, repeats: int) -> None:
    spec = resolve_model(DEFAULT_MODEL, "onnx")
    tokenizer = Tokenizer.from_file(str(spec.tokenizer))
    tokenizer.enable_truncation(spec.max_tokens)
    tokenizer.enable_padding()
    packaged = Encoder(session(spec.path), tokenizer)
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        other = Encoder(session(quantized_copy(spec.path, folder)), tokenizer) if quantized else None
        print(f"{spec.path.name} ({spec.name}), one thread; CPU ms per encode of one text")
        for words in WORDS:
            text = text_of(words)
            tokens = len(tokenizer.encode(text).ids)
            line = f"  {tokens:4d} tokens  packaged {cpu_ms(packaged, text, repeats):7.2f} ms"
            if other is not None:
                cosine = float((packaged([text]) * other([text])).sum())
                line += f"   dynamic int8 {cpu_ms(other, text, repeats):7.2f} ms  cosine {cosine:.4f}"
            print(line)
        print("where a run of ~30 tokens goes (packaged model):")
        for name, share in operator_shares(spec.path, tokenizer, folder):
            print(f"  {name:26s} {share:6.1%}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quantized", action="store_true", help="also a dynamically quantized copy (needs onnx)")
    parser.add_argument("--repeats", type=int, default=20, help="encodes timed per figure")
    args = parser.parse_args()
    main(args.quantized, args.repeats)
