"""TEMPORARY STUB (core engineer) - to be overwritten by the fingerprint module."""
import numpy as np
DIM = 16
VERSION = "0"
def fingerprint_batch(images):
    out = []
    for im in images:
        x = im[:64, :64].astype(np.float32)
        r = x[1:, 1:] - x[:-1, 1:]
        out.append(np.histogram(r, bins=16, range=(-40, 40))[0].astype(np.float32) - 200)
    return np.stack(out)
