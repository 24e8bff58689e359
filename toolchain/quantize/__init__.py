"""Post-training int8 quantization: calibrate on the source model, quantize the IR per the
TFLite int8 spec, keep at int16 what measurably needs it, and write the QDQ ONNX artifact
that onnxruntime can run."""
from .calibrate import calibrate, generate_calibration_data
from .precision import choose_precision
from .qdq import write_qdq_onnx
from .tflite_int8 import quantize

__all__ = ["calibrate", "choose_precision", "generate_calibration_data", "quantize",
           "write_qdq_onnx"]
