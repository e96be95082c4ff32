"""Imported by the process pool's fork server: workers fork with the dlib models already loaded.

Loading the 68-point predictor (~100 MB) and the HOG detector takes about half a second per
process; done once in the fork server, every worker starts warm and shares those pages
copy-on-write instead of each holding its own copy.
"""

from fer_data.faces import detect, landmarks, process, quality  # noqa: F401  (imported for their models)

landmarks._predictor()
detect._hog()
quality.reference_shape()

# Writing a shard's Parquet part imports pyarrow and, through it, pandas (0.6 s): once here, not per worker.
import pandas  # noqa: E402,F401
import pyarrow.parquet  # noqa: E402,F401
