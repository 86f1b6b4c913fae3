"""User-facing errors. Each carries a one-line message; the CLI prints it and exits non-zero (no traceback).

Internal bugs are other exception types and keep their tracebacks.
"""
from __future__ import annotations


class SpecializerError(Exception):
    """Base class of every error caused by the user's input (model, arguments, environment)."""

    exit_code = 2

    def __str__(self) -> str:  # always one line
        return " ".join(super().__str__().split())


class ModelFormatError(SpecializerError):
    """The file is not a readable TFLite flatbuffer (malformed, truncated, wrong file)."""


class UnsupportedOpError(SpecializerError):
    """An operator the compiler has no kernel for."""


class UnsupportedTypeError(SpecializerError):
    """A tensor type or quantization the compiler cannot handle (float where int8 is required, ...)."""


class ShapeError(SpecializerError):
    """Shapes or parameters a kernel cannot take."""


class InvalidNameError(SpecializerError):
    """--name is not a valid C identifier."""


class OutputError(SpecializerError):
    """The output directory cannot be written."""


class TargetError(SpecializerError):
    """Unknown target, or the cross toolchain is missing or failed."""


class ControlFlowError(UnsupportedOpError):
    """Control flow the compiler cannot turn into straight-line code (IF, CALL_ONCE, a WHILE whose trip count is
    not a compile-time constant)."""
