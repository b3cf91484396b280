"""Export formats: a registry of exporters (``onnx``), each keeping a file only when it passes
its own parity gate. The bundle every tool loads is ``imgclf.models.bundle``."""

from imgclf.export.registry import (
    Exporter,
    format_names,
    get_exporter,
    list_exporters,
    register_exporter,
)

__all__ = ["Exporter", "format_names", "get_exporter", "list_exporters", "register_exporter"]
