"""Build pipeline for the router's signal models (build-time only: needs the `.[train]` extra).

Run from the repository root:  python -m models.build [--out DIR] [--force]
"""
