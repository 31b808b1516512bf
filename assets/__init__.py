"""Dagster asset definitions, one module per stage, thin over ``gme_data``."""
