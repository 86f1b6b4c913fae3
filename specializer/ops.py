"""Typed operator attributes and the table that maps them to TFLite builtin options.

How it works
1. One frozen dataclass per op kind holds the attributes read from the TFLite builtin options (enums decoded to
   strings: padding "SAME"/"VALID", activation "NONE"/"RELU"/...). Ops without options use `NoAttrs`.
2. `OP_SPECS[kind]` says which options table carries them and which flatbuffer field feeds each attribute. The
   importer (`frontend.tflite_import`) and the writer (`tflite_writer`) both read this one table, so reading and
   writing cannot drift apart.
3. Attributes that passes derive (explicit padding after PAD folding) are extra fields with a default that the
   importer never sets.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

PADDINGS = ("SAME", "VALID")
# TFLite TensorType codes of the types an op option may name (ARG_MAX/ARG_MIN output_type)
TENSOR_TYPES = {0: "float32", 1: "float16", 2: "int32", 3: "uint8", 4: "int64", 6: "bool", 7: "int16", 9: "int8"}
ACTIVATIONS = ("NONE", "RELU", "RELU_N1_TO_1", "RELU6", "TANH", "SIGN_BIT")


@dataclass(frozen=True)
class NoAttrs:
    pass


@dataclass(frozen=True)
class Conv2D:
    padding: str = "SAME"
    stride_h: int = 1
    stride_w: int = 1
    dilation_h: int = 1
    dilation_w: int = 1
    activation: str = "NONE"
    explicit_padding: Optional[tuple[int, int, int, int]] = None  # (top, bottom, left, right), set by fold_padding


@dataclass(frozen=True)
class DepthwiseConv2D:
    padding: str = "SAME"
    stride_h: int = 1
    stride_w: int = 1
    dilation_h: int = 1
    dilation_w: int = 1
    depth_multiplier: int = 1
    activation: str = "NONE"
    explicit_padding: Optional[tuple[int, int, int, int]] = None


@dataclass(frozen=True)
class FullyConnected:
    activation: str = "NONE"
    keep_num_dims: bool = False
    weights_format: int = 0  # 0 = DEFAULT; shuffled formats are rejected by the importer


@dataclass(frozen=True)
class Pool2D:
    padding: str = "VALID"
    stride_h: int = 1
    stride_w: int = 1
    filter_h: int = 1
    filter_w: int = 1
    activation: str = "NONE"
    explicit_padding: Optional[tuple[int, int, int, int]] = None


@dataclass(frozen=True)
class Elementwise:
    """ADD, SUB, MUL."""

    activation: str = "NONE"


@dataclass(frozen=True)
class Reshape:
    new_shape: tuple[int, ...] = ()


@dataclass(frozen=True)
class Squeeze:
    squeeze_dims: tuple[int, ...] = ()


@dataclass(frozen=True)
class Softmax:
    beta: float = 1.0


@dataclass(frozen=True)
class TransposeConv:
    padding: str = "SAME"
    stride_h: int = 1
    stride_w: int = 1
    activation: str = "NONE"


@dataclass(frozen=True)
class BatchMatMul:
    adj_x: bool = False
    adj_y: bool = False


@dataclass(frozen=True)
class Gather:
    axis: int = 0
    batch_dims: int = 0


@dataclass(frozen=True)
class BlockSize:
    block_size: int = 2


@dataclass(frozen=True)
class Pack:
    values_count: int = 0
    axis: int = 0


@dataclass(frozen=True)
class Unpack:
    num: int = 0
    axis: int = 0


@dataclass(frozen=True)
class LeakyRelu:
    alpha: float = 0.2


@dataclass(frozen=True)
class Concatenation:
    axis: int = 0
    activation: str = "NONE"


@dataclass(frozen=True)
class ResizeNearestNeighbor:
    align_corners: bool = False
    half_pixel_centers: bool = False


@dataclass(frozen=True)
class ResizeBilinear:
    align_corners: bool = False
    half_pixel_centers: bool = False


@dataclass(frozen=True)
class ArgMinMax:
    """ARG_MAX / ARG_MIN (the axis comes from the constant second input)."""

    output_type: str = "int32"  # the index tensor's type (TFLite TensorType, decoded)


@dataclass(frozen=True)
class Reducer:
    """MEAN (axes come from the constant second input)."""

    keep_dims: bool = False


@dataclass(frozen=True)
class StridedSlice:
    begin_mask: int = 0
    end_mask: int = 0
    ellipsis_mask: int = 0
    new_axis_mask: int = 0
    shrink_axis_mask: int = 0
    offset: bool = False


@dataclass(frozen=True)
class Split:
    num_splits: int = 1


@dataclass(frozen=True)
class UnidirectionalSequenceLSTM:
    activation: str = "TANH"
    cell_clip: float = 0.0
    proj_clip: float = 0.0
    time_major: bool = False
    asymmetric_quantize_inputs: bool = False
    diagonal_recurrent_tensors: bool = False


@dataclass(frozen=True)
class SVDF:
    rank: int = 1
    activation: str = "NONE"  # TFLite Micro's integer SVDF does not apply it (only its float path does)
    asymmetric_quantize_inputs: bool = False  # hybrid (float input, int8 weights) option


@dataclass(frozen=True)
class OpSpec:
    attrs: type
    options: Optional[str] = None  # name of the tflite options table (module and class in the `tflite` package)
    # (attr name, flatbuffer field, kind: int|bool|float|padding|act|ivec|dtype)
    fields: tuple[tuple[str, str, str], ...] = ()


def _spec(attrs, options=None, **fields):
    return OpSpec(attrs, options, tuple((k, v[0], v[1]) for k, v in fields.items()))


_CONV = dict(padding=("Padding", "padding"), stride_w=("StrideW", "int"), stride_h=("StrideH", "int"),
             dilation_w=("DilationWFactor", "int"), dilation_h=("DilationHFactor", "int"),
             activation=("FusedActivationFunction", "act"))
_POOL = dict(padding=("Padding", "padding"), stride_w=("StrideW", "int"), stride_h=("StrideH", "int"),
             filter_w=("FilterWidth", "int"), filter_h=("FilterHeight", "int"),
             activation=("FusedActivationFunction", "act"))
_ACT = dict(activation=("FusedActivationFunction", "act"))

OP_SPECS: dict[str, OpSpec] = {
    "CONV_2D": _spec(Conv2D, "Conv2DOptions", **_CONV),
    "DEPTHWISE_CONV_2D": _spec(DepthwiseConv2D, "DepthwiseConv2DOptions", **_CONV,
                               depth_multiplier=("DepthMultiplier", "int")),
    "FULLY_CONNECTED": _spec(FullyConnected, "FullyConnectedOptions", **_ACT,
                             keep_num_dims=("KeepNumDims", "bool"), weights_format=("WeightsFormat", "int")),
    "AVERAGE_POOL_2D": _spec(Pool2D, "Pool2DOptions", **_POOL),
    "MAX_POOL_2D": _spec(Pool2D, "Pool2DOptions", **_POOL),
    "ADD": _spec(Elementwise, "AddOptions", **_ACT),
    "SUB": _spec(Elementwise, "SubOptions", **_ACT),
    "MUL": _spec(Elementwise, "MulOptions", **_ACT),
    "RESHAPE": _spec(Reshape, "ReshapeOptions", new_shape=("NewShape", "ivec")),
    "SQUEEZE": _spec(Squeeze, "SqueezeOptions", squeeze_dims=("SqueezeDims", "ivec")),
    "EXPAND_DIMS": _spec(NoAttrs, "ExpandDimsOptions"),
    "SOFTMAX": _spec(Softmax, "SoftmaxOptions", beta=("Beta", "float")),
    "QUANTIZE": _spec(NoAttrs),
    "DEQUANTIZE": _spec(NoAttrs),
    "PAD": _spec(NoAttrs, "PadOptions"),
    "PADV2": _spec(NoAttrs, "PadV2Options"),
    "CONCATENATION": _spec(Concatenation, "ConcatenationOptions", axis=("Axis", "int"), **_ACT),
    "RESIZE_NEAREST_NEIGHBOR": _spec(ResizeNearestNeighbor, "ResizeNearestNeighborOptions",
                                     align_corners=("AlignCorners", "bool"),
                                     half_pixel_centers=("HalfPixelCenters", "bool")),
    "UNIDIRECTIONAL_SEQUENCE_LSTM": _spec(UnidirectionalSequenceLSTM, "UnidirectionalSequenceLSTMOptions",
                                          activation=("FusedActivationFunction", "act"),
                                          cell_clip=("CellClip", "float"), proj_clip=("ProjClip", "float"),
                                          time_major=("TimeMajor", "bool"),
                                          asymmetric_quantize_inputs=("AsymmetricQuantizeInputs", "bool"),
                                          diagonal_recurrent_tensors=("DiagonalRecurrentTensors", "bool")),
    "MEAN": _spec(Reducer, "ReducerOptions", keep_dims=("KeepDims", "bool")),
    "SUM": _spec(Reducer, "ReducerOptions", keep_dims=("KeepDims", "bool")),
    "REDUCE_MAX": _spec(Reducer, "ReducerOptions", keep_dims=("KeepDims", "bool")),
    "LOGISTIC": _spec(NoAttrs),
    "TANH": _spec(NoAttrs),
    "HARD_SWISH": _spec(NoAttrs, "HardSwishOptions"),
    "RELU": _spec(NoAttrs),
    "RELU6": _spec(NoAttrs),
    "RELU_N1_TO_1": _spec(NoAttrs),
    "TRANSPOSE": _spec(NoAttrs, "TransposeOptions"),
    "STRIDED_SLICE": _spec(StridedSlice, "StridedSliceOptions", begin_mask=("BeginMask", "int"),
                           end_mask=("EndMask", "int"), ellipsis_mask=("EllipsisMask", "int"),
                           new_axis_mask=("NewAxisMask", "int"), shrink_axis_mask=("ShrinkAxisMask", "int"),
                           offset=("Offset", "bool")),
    "SPLIT": _spec(Split, "SplitOptions", num_splits=("NumSplits", "int")),
    "SPLIT_V": _spec(Split, "SplitVOptions", num_splits=("NumSplits", "int")),
    "MAXIMUM": _spec(NoAttrs, "MaximumMinimumOptions"),
    "ABS": _spec(NoAttrs),
    "PRELU": _spec(NoAttrs),
    "NEG": _spec(NoAttrs),
    "ELU": _spec(NoAttrs),
    "EXP": _spec(NoAttrs),
    "RSQRT": _spec(NoAttrs),
    "LEAKY_RELU": _spec(LeakyRelu, "LeakyReluOptions", alpha=("Alpha", "float")),
    "SLICE": _spec(NoAttrs, "SliceOptions"),
    "SPACE_TO_BATCH_ND": _spec(NoAttrs, "SpaceToBatchNDOptions"),
    "BATCH_TO_SPACE_ND": _spec(NoAttrs, "BatchToSpaceNDOptions"),
    "GATHER": _spec(Gather, "GatherOptions", axis=("Axis", "int"), batch_dims=("BatchDims", "int")),
    "BATCH_MATMUL": _spec(BatchMatMul, "BatchMatMulOptions", adj_x=("AdjX", "bool"), adj_y=("AdjY", "bool")),
    "TRANSPOSE_CONV": _spec(TransposeConv, "TransposeConvOptions", padding=("Padding", "padding"),
                            stride_w=("StrideW", "int"), stride_h=("StrideH", "int"),
                            activation=("FusedActivationFunction", "act")),
    "PACK": _spec(Pack, "PackOptions", values_count=("ValuesCount", "int"), axis=("Axis", "int")),
    "UNPACK": _spec(Unpack, "UnpackOptions", num=("Num", "int"), axis=("Axis", "int")),
    "SPACE_TO_DEPTH": _spec(BlockSize, "SpaceToDepthOptions", block_size=("BlockSize", "int")),
    "DEPTH_TO_SPACE": _spec(BlockSize, "DepthToSpaceOptions", block_size=("BlockSize", "int")),
    "MINIMUM": _spec(NoAttrs, "MaximumMinimumOptions"),
    "ADD_N": _spec(NoAttrs, "AddNOptions"),
    "SQUARED_DIFFERENCE": _spec(NoAttrs, "SquaredDifferenceOptions"),
    "RESIZE_BILINEAR": _spec(ResizeBilinear, "ResizeBilinearOptions", align_corners=("AlignCorners", "bool"),
                             half_pixel_centers=("HalfPixelCenters", "bool")),
    "ARG_MAX": _spec(ArgMinMax, "ArgMaxOptions", output_type=("OutputType", "dtype")),
    "ARG_MIN": _spec(ArgMinMax, "ArgMinOptions", output_type=("OutputType", "dtype")),
    "LOG_SOFTMAX": _spec(NoAttrs, "LogSoftmaxOptions"),
    "SVDF": _spec(SVDF, "SVDFOptions", rank=("Rank", "int"), activation=("FusedActivationFunction", "act"),
                  asymmetric_quantize_inputs=("AsymmetricQuantizeInputs", "bool")),
}

SUPPORTED_OPS = tuple(sorted(OP_SPECS))


def conv_output_size(in_size: int, k: int, stride: int, dilation: int, padding: str) -> int:
    """TFLite's output size rule for SAME/VALID padding."""
    eff = (k - 1) * dilation + 1
    if padding == "SAME":
        return (in_size + stride - 1) // stride
    return (in_size - eff + stride) // stride


def same_padding(in_size: int, out_size: int, k: int, stride: int, dilation: int) -> tuple[int, int]:
    """(before, after) padding of TFLite SAME; before = total // 2 as in TFLite's ComputePaddingHeightWidth."""
    eff = (k - 1) * dilation + 1
    total = max((out_size - 1) * stride + eff - in_size, 0)
    return total // 2, total - total // 2


def explicit_padding(attrs, in_hw: tuple[int, int], out_hw: tuple[int, int], k_hw: tuple[int, int]
                     ) -> tuple[int, int, int, int]:
    """(top, bottom, left, right) for a conv/depthwise/pool op, whatever its padding kind."""
    if getattr(attrs, "explicit_padding", None) is not None:
        return attrs.explicit_padding
    if attrs.padding == "VALID":
        return (0, 0, 0, 0)
    dh = getattr(attrs, "dilation_h", 1)
    dw = getattr(attrs, "dilation_w", 1)
    t, b = same_padding(in_hw[0], out_hw[0], k_hw[0], attrs.stride_h, dh)
    l, r = same_padding(in_hw[1], out_hw[1], k_hw[1], attrs.stride_w, dw)
    return (t, b, l, r)
