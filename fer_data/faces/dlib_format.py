"""Reading dlib's model files (dlib/serialize.h) and caching what was read as .npz.

Shared by the 68-point shape predictor (fer_data.faces.ert) and the face encoder
(fer_data.faces.embed): dlib's Python bindings evaluate its models but do not hand out their
parameters, so the files are parsed here once and the arrays cached (fer_data.env.cache_dir),
written atomically because parallel workers may race to create the same file.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable
from pathlib import Path

import numpy as np

from fer_data.env import cache_dir


class Reader:
    """dlib/serialize.h: ints as a size byte (0x80 = negative) + little-endian bytes; floats as
    (mantissa, exponent) int pairs; std::vector as size + items; matrices as -rows, -cols + items;
    strings as size + bytes; bools as the characters '0' / '1'; dnn tensors as version 2, four
    dimensions, then raw little-endian float32 (dlib/cuda/tensor.h)."""

    def __init__(self, data: bytes):
        self.data = data
        self.pos = 0

    def int(self) -> int:
        h = self.data[self.pos]
        n = h & 0x0F
        v = int.from_bytes(self.data[self.pos + 1 : self.pos + 1 + n], "little")
        self.pos += 1 + n
        return -v if h & 0x80 else v

    def floats(self, k: int) -> np.ndarray:
        d, p, from_bytes = self.data, self.pos, int.from_bytes
        pairs = np.empty((k, 2), np.int64)
        for i in range(k):
            for j in (0, 1):
                h = d[p]
                n = h & 15
                v = from_bytes(d[p + 1 : p + 1 + n], "little")
                p += 1 + n
                pairs[i, j] = -v if h & 0x80 else v
        self.pos = p
        return np.ldexp(pairs[:, 0].astype(np.float64), pairs[:, 1]).astype(np.float32)

    def matrix(self) -> np.ndarray:
        rows, cols = abs(self.int()), abs(self.int())
        return self.floats(rows * cols)

    def string(self) -> str:
        n = self.int()
        text = self.data[self.pos : self.pos + n].decode("latin-1")
        self.pos += n
        return text

    def bool(self) -> bool:
        c = self.data[self.pos : self.pos + 1]
        if c not in (b"0", b"1"):
            raise ValueError(f"byte {self.pos}: a bool ('0' or '1') expected, found {c!r}")
        self.pos += 1
        return c == b"1"

    def tensor(self) -> np.ndarray:
        """A dnn tensor: (num_samples, k, nr, nc) float32."""
        if (version := self.int()) != 2:
            raise ValueError(f"byte {self.pos}: tensor serialisation version 2 expected, found {version}")
        shape = tuple(self.int() for _ in range(4))
        count = int(np.prod(shape))
        values = np.frombuffer(self.data, "<f4", count, self.pos).reshape(shape)
        self.pos += 4 * count
        return values.astype(np.float32)


def cached_arrays(path: str | Path, version: int, parse: Callable[[Path], dict[str, np.ndarray]]) -> dict:
    """parse(path)'s arrays, from the .npz cache when it is there (else parsed, cached atomically).

    The cache key is the model file's name and size plus the parser's layout `version`.
    """
    path = Path(path)
    cached = cache_dir() / f"{path.stem}-{path.stat().st_size}-v{version}.npz"
    if cached.exists():
        with np.load(cached) as z:
            return {k: z[k] for k in z.files}
    arrays = parse(path)
    cached.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=cached.parent, suffix=".npz.tmp")
    try:
        with os.fdopen(fd, "wb") as fh:
            np.savez(fh, **arrays)
        os.chmod(tmp, 0o644)  # mkstemp makes it private; it is a cache anyone may read
        os.replace(tmp, cached)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return arrays
