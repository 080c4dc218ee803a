"""Batch analyzer jobs: read a window from ClickHouse, compute, write result rows."""
