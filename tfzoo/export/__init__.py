"""Export to TF Serving: versioned SavedModels with named signatures, validated before they go live."""
from tfzoo.export.saved_model import ExportError, export, export_model
from tfzoo.export.validate import ValidationReport, validate

__all__ = ["ExportError", "ValidationReport", "export", "export_model", "validate"]
