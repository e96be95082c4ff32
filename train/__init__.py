"""Training hand-off: FER models trained from a `fer-data corpus` output (`python -m train fit|evaluate|bench-loader`).

Imports only torch, numpy, pyarrow, PyYAML and the standard library, so it runs on a GPU host with a
stock PyTorch image and none of the curation stack (tests/test_train_imports.py checks it).
"""

__version__ = "1"
