"""The top of Varta: the ``varta`` command line, the demo and the configuration reference.

Everything here may import ``edge_agent``, ``central``, ``bench``, ``models`` and ``shared``;
nothing below imports this package.
"""

import os

# One BLAS thread per process unless the operator sets otherwise, before anything imports
# NumPy (OpenBLAS reads this once, when it loads). Central's face search is one
# matrix-vector product per face on the ingest thread; with OpenBLAS's own threads it waits
# for them whenever the cores are busy. `varta bench face-watchlist --persons 100000` at
# load average 5.2-5.9: match p99 36.6 ms with OpenBLAS's threads, 2.7-9.3 ms with one
# (four runs; p50 about 2 ms either way), gallery build 2.7 s against 1.1-1.9 s. The edge's
# heavy work runs in OpenVINO's own threads.
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
