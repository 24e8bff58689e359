"""C code generation from a lowered Program and its memory Plan (see c_emitter.py)."""
from .c_emitter import KERNEL_SOURCES, emit_sources, runtime_files

__all__ = ["KERNEL_SOURCES", "emit_sources", "runtime_files"]
