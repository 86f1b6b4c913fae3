"""specializer: compile int8 TFLite models into static, dependency-free C libraries for Arm Cortex-M."""
from .api import CompileResult, compile, inspect_model
from .errors import SpecializerError

__version__ = "0.1.0"
__all__ = ["compile", "inspect_model", "CompileResult", "SpecializerError", "__version__"]
