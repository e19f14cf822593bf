"""Prefect flows that drive the DVC pipeline (see flows/pipeline.py and flows/serve.py)."""
