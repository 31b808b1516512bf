"""Shared test helpers (real servers and fixtures other test packages reuse)."""
