"""Grafana dashboards and alert rules as code, and the built-in HTML report."""
