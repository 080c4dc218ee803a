"""Sources of records that are not app code (GPU via NVML, serving-engine scrapers).

Collectors produce plain rows and know nothing about export: the sidecar calls them through the
``Collector`` protocol (``base``) on a schedule and hands their rows to the store. They may import
``llmpulse.agent.store`` and nothing else of llmpulse.
"""
