"""fer-data: curate facial-expression datasets into training-ready Parquet tables."""

__version__ = "0.1.0"
