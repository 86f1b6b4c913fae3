"""Model importers. Only TFLite flatbuffers for now."""
from .tflite_import import check_types, load_model

__all__ = ["load_model", "check_types"]
