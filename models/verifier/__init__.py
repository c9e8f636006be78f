"""Build-time data of the cache verifier (models/build_verifier.py). A sub-package so that it is outside the signal
model's recipe hash, which covers the files directly under models/ (models/build.py)."""
