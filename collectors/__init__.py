"""Sources of records that are not app code (GPU via NVML, serving-engine scrapers).

Collectors produce plain data and know nothing about export; see ../shared/DESIGN.md section 1.
"""
