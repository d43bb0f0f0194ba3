"""The analytic capacity model: memory, roofline prefill and decode, parallelism costs.

Every estimate is a frozen dataclass whose `assumptions` say, in words a candidate can read,
what the number took for granted. GPU and model figures come from datasheets and published
configs (`catalog`; the engine's own shapes from `engine.config`); efficiency factors and
host costs are named parameters (`timing.Efficiency`) that `calibration.fit_efficiency` can
calibrate from the engine's measured prefill and decode times. `memory`, `timing` and
`sizing` hold the arithmetic; `cli` the command line:

    python -m engine.capacity --model llama-3-8b --gpu h100-sxm --batch 64 --context 4096
"""

from engine.capacity.calibration import (
    Comparison,
    Measurement,
    compare,
    comparison_table,
    fit_efficiency,
    predict_ms,
)
from engine.capacity.catalog import (
    ACTIVATION_BYTES,
    DEFAULT_ACTIVATION_RESERVE_BYTES,
    DEFAULT_BLOCK_SIZE_TOKENS,
    DEFAULT_MEMORY_UTILIZATION,
    DTYPE_BYTES,
    GB,
    GIB,
    GPUS,
    INT4_GROUP_OVERHEAD_BYTES,
    INT4_GROUP_SIZE,
    KV_DTYPES,
    MODELS,
    WEIGHT_DTYPES,
    GpuSpec,
    ModelSpec,
    gpu_spec,
    model_spec,
)
from engine.capacity.memory import (
    KvBytes,
    MemoryPlan,
    ParamCounts,
    WeightBytes,
    activation_bytes_per_token,
    kv_bytes_per_token,
    max_concurrent_sequences,
    param_counts,
    weight_bytes,
)
from engine.capacity.sizing import (
    Estimate,
    GpuPlan,
    RooflineBound,
    Throughput,
    estimate,
    gpus_needed,
    roofline_tokens_per_s,
    throughput,
)
from engine.capacity.timing import (
    PEAK,
    AllReduceTime,
    DecodeStep,
    Efficiency,
    PipelineBubble,
    PrefillTime,
    allreduce_time,
    decode_step_time,
    pipeline_bubble,
    prefill_time,
)

__all__ = [
    "ACTIVATION_BYTES", "DEFAULT_ACTIVATION_RESERVE_BYTES", "DEFAULT_BLOCK_SIZE_TOKENS",
    "DEFAULT_MEMORY_UTILIZATION", "DTYPE_BYTES", "GB", "GIB", "GPUS", "INT4_GROUP_OVERHEAD_BYTES",
    "INT4_GROUP_SIZE", "KV_DTYPES", "MODELS", "PEAK", "WEIGHT_DTYPES", "AllReduceTime",
    "Comparison", "DecodeStep", "Efficiency", "Estimate", "GpuPlan", "GpuSpec", "KvBytes",
    "Measurement", "MemoryPlan", "ModelSpec", "ParamCounts", "PipelineBubble", "PrefillTime",
    "RooflineBound", "Throughput", "WeightBytes", "activation_bytes_per_token", "allreduce_time",
    "compare", "comparison_table", "decode_step_time", "estimate", "fit_efficiency", "gpu_spec",
    "gpus_needed", "kv_bytes_per_token", "max_concurrent_sequences", "model_spec",
    "param_counts", "pipeline_bubble", "predict_ms", "prefill_time", "roofline_tokens_per_s",
    "throughput", "weight_bytes",
]  # fmt: skip
