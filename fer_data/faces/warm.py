"""Imported by the process pool's fork server: workers fork with the models already loaded.

Loading the 68-point model (65 MB of arrays, plus torch for its leaf sums) and the HOG
detector takes a second or two per process; done once in the fork server, every worker
starts warm and shares those pages copy-on-write instead of each holding its own copy.
"""

import torch

from fer_data.faces import detect, ert, process, quality  # noqa: F401  (imported for their models)

torch.set_num_threads(1)  # one worker process per core: intra-op threads would oversubscribe
ert.default_model()
detect._hog()
quality.reference_shape()

# Writing a shard's Parquet part imports pyarrow and, through it, pandas (0.6 s): once here, not per worker.
import pandas  # noqa: E402,F401
import pyarrow.parquet  # noqa: E402,F401
