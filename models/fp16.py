"""The GPU variant of the signal graph: the fp32 export converted to fp16, inputs and outputs kept fp32.

Dynamic int8 (the CPU model) is the wrong format for a GPU: onnxruntime's CUDA provider has no kernel for the
fused DynamicQuantizeMatMul, so the quantized MatMuls would run on the host with copies either side. fp16 runs
on tensor cores and keeps the embedding within ~1e-3 cosine of fp32 (measured by the build, metrics.json)."""
from __future__ import annotations

import logging
from pathlib import Path

log = logging.getLogger(__name__)


def to_fp16(src: Path, dst: Path) -> None:
    import onnx
    from onnxruntime.transformers.float16 import convert_float_to_float16

    model = onnx.load(str(src))
    # keep_io_types: callers feed int64 ids and read fp32 outputs whatever the device
    m16 = convert_float_to_float16(model, keep_io_types=True, disable_shape_infer=False)
    onnx.save(m16, str(dst))
    log.info("fp16 GPU variant %s -> %s", src.name, dst.name)
