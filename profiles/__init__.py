"""Data shipped with advisor: model profiles, quantization recipes, hardware catalog, prices.

Installed as the package `advisor.data` and read with importlib.resources.
"""
