"""Spark schemas derived from the Arrow schemas of the pure core (``udfs.schema``)."""

from __future__ import annotations

from pyspark.sql.pandas.types import from_arrow_schema
from pyspark.sql.types import StructType

from udfs.schema import RAW_SCHEMA, UNIT_SCHEMA

UNIT_STRUCT: StructType = from_arrow_schema(UNIT_SCHEMA)
RAW_STRUCT: StructType = from_arrow_schema(RAW_SCHEMA)
