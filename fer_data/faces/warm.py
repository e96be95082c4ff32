"""Imported by the process pool's fork server: workers fork with the models already loaded.

Loading the 68-point model (65 MB of arrays, its compiled evaluator from numba's disk cache),
the HOG detector and the face encoder's arrays takes about a second per process; done once in
the fork server, every worker starts warm and shares those pages copy-on-write instead of each
holding its own copy.
`run.py setup` imports it too, so the one-off costs (parsing dlib's model file into the .npz
cache, ~12 s; compiling the evaluator, ~7 s) are paid while setting up, not by the first run.
"""

import numpy as np

from fer_data.faces import detect, embed, ert, process, quality  # noqa: F401  (imported for their models)

ert.predict([np.zeros((8, 8), np.uint8)], [(0, 0, 7, 7)])  # loads the model, compiles or loads the kernel
detect._hog()
quality.reference_shape()

# The face encoder's weights (22 MB of arrays; parsing dlib's file into the .npz cache the first time)
# and torch itself (1-2 s to import). Nothing runs on torch here: a CUDA context or an OpenMP thread
# pool started in the fork server would be unusable in the workers forked from it.
import torch  # noqa: E402,F401

embed.default_arrays()

# Writing a shard's Parquet part imports pyarrow and, through it, pandas (0.6 s): once here, not per worker.
import pandas  # noqa: E402,F401
import pyarrow.parquet  # noqa: E402,F401
