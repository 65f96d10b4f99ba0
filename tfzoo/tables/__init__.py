"""Users' own tables: the schema (column kinds, label values, training statistics) and the preprocessing layer that
carries it inside the model. The loaders (tfzoo.datasets), the trainer and the export all use this one package."""
from __future__ import annotations

from tfzoo.tables.features import TableFeatures, table_model, table_schema
from tfzoo.tables.schema import Column, TablePlan, TableSchema, check_table, fit_schema, model_inputs

__all__ = ["Column", "TableFeatures", "TablePlan", "TableSchema", "check_table", "fit_schema", "model_inputs",
           "table_model", "table_schema"]
