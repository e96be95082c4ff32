"""128-d face descriptors equal to dlib's face encoder, a batch at a time, with torch.

The model is dlib's (`dlib_face_recognition_resnet_model_v1.dat` from face_recognition_models:
a 29-conv ResNet trained by Davis King on ~3 million faces of 7,485 people, released into the
public domain; unlike the 68-point landmark model, trained on iBUG 300-W, it carries no
non-commercial restriction). dlib evaluates it one face at a time, ~80 ms a face on one core
whether given one face or many, holding the GIL. Here the same network (dlib's anet_type, read
from dlib's file, fer_data.faces.dlib_format) runs in torch: batched, on CUDA when there is
one; on CPU about 15x faster a core (BENCHMARKS.md, "Face embeddings"). Descriptors equal
dlib's to float rounding (max |difference| < 1e-6, tests/test_faces_embed.py).

Chips are dlib's own: `dlib.get_face_chip(image, 68 points, 150, 0.25)`, colour when the
original image is colour, grey put on three channels otherwise (what dlib does with grey).
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from functools import lru_cache
from pathlib import Path

import numpy as np

from fer_data.faces.dlib_format import Reader, cache_dir, cached_arrays

EMBEDDING_DIM = 128
#: dlib's documented decision threshold: two descriptors closer than 0.6 (Euclidean) are the same
#: person (99.38 % on the LFW benchmark, dlib's dnn_face_recognition_ex.cpp and its blog post).
SAME_PERSON_DISTANCE = 0.6
#: The chip the network was trained on: 150x150 RGB, the face's landmarks mapped to dlib's mean
#: face shape with 25 % padding around it (dlib's get_face_chip defaults).
CHIP_SIZE = 150
CHIP_PADDING = 0.25


MODEL_FILE = "dlib_face_recognition_resnet_model_v1.dat"


def _quiet_import_models():
    with warnings.catch_warnings():  # face_recognition_models imports pkg_resources
        warnings.simplefilter("ignore")
        import face_recognition_models
    return face_recognition_models


def model_path() -> str:
    return _quiet_import_models().face_recognition_model_location()


def face_chip(image: np.ndarray, landmarks68: np.ndarray) -> np.ndarray:
    """dlib's (150, 150, 3) uint8 chip of the face whose 68 points (original-image x, y) are given.

    dlib's own shape predictor rounds its points to whole pixels; ours are sub-pixel, so they are
    rounded the same way (floor(v + 0.5)) and the chip is the one dlib would cut for its own fit.
    A grey image is cut grey and put on three channels: the same bytes as cutting its three-channel
    copy (checked on real JAFFE and CK+ frames), at 1.0 instead of 2.7 ms for a 640x490 frame.
    """
    import dlib

    image = np.ascontiguousarray(image, np.uint8)
    if image.ndim != 2 and (image.ndim != 3 or image.shape[2] != 3):
        raise ValueError(f"expected a grey (h, w) or RGB (h, w, 3) image, got shape {image.shape}")
    points = np.floor(np.asarray(landmarks68, np.float64).reshape(68, 2) + 0.5).astype(np.int64)
    (left, top), (right, bottom) = points.min(axis=0), points.max(axis=0)
    shape = dlib.full_object_detection(
        dlib.rectangle(int(left), int(top), int(right), int(bottom)), [dlib.point(int(x), int(y)) for x, y in points]
    )
    chip = dlib.get_face_chip(image, shape, size=CHIP_SIZE, padding=CHIP_PADDING)
    return np.repeat(chip[:, :, None], 3, axis=2) if chip.ndim == 2 else chip


@lru_cache(maxsize=1)
def _dlib_encoder():
    import dlib

    return dlib.face_recognition_model_v1(model_path())


def dlib_descriptors(chips: np.ndarray) -> np.ndarray:
    """(n, 128) float32: dlib's own encoder on (n, 150, 150, 3) chips (the reference, for tests and benches)."""
    chips = np.asarray(chips, np.uint8).reshape(-1, CHIP_SIZE, CHIP_SIZE, 3)
    if len(chips) == 0:
        return np.zeros((0, EMBEDDING_DIM), np.float32)
    encoder = _dlib_encoder()
    return np.array([encoder.compute_face_descriptor(np.ascontiguousarray(c)) for c in chips], np.float32)


def select_device(device: str = "auto", cuda_available: bool | None = None) -> str:
    """The torch device to use: "auto" is CUDA when torch sees a GPU, else CPU; others are taken as given."""
    if device != "auto":
        if device != "cpu" and not device.startswith("cuda"):
            raise ValueError(f"device must be auto, cpu, cuda or cuda:N, got {device!r}")
        return device
    if cuda_available is None:
        import torch

        cuda_available = torch.cuda.is_available()
    return "cuda" if cuda_available else "cpu"


# ---------------------------------------------------------------- dlib's file, as arrays
#: Bumped when the cached arrays' layout changes.
CACHE_FORMAT = 1


def read_dlib(path: str | Path) -> dict[str, np.ndarray]:
    """dlib's face recognition ResNet (dnn_face_recognition_ex.cpp's anet_type) as named arrays.

    The file is the whole network serialised from the loss layer down: the loss, one version int
    per layer (tags and skips write nothing else), the input layer, then each layer's parameters
    from the input upwards. The layer sequence must be anet_type's: a stem (con 7x7/2, affine,
    relu, max_pool 3x3/2), residual blocks (con, affine, relu, con, affine, [avg_pool 2x2/2 on the
    skip path when the first con is strided], add_prev, relu), avg_pool_everything, fc_no_bias.
    Strides and paddings are read from the file, not assumed.
    """
    r = Reader(Path(path).read_bytes())
    if r.int() != 1 or r.string() != "loss_metric_2":
        raise ValueError(f"{path}: not a dlib metric-learning network (loss_metric_2)")
    r.floats(2)  # the loss's margin and distance threshold: training-time only
    while True:  # one version int per layer, outermost first
        start = r.pos
        if r.int() not in (1, 2, 3):
            r.pos = start
            break
    if r.string() != "input_rgb_image_sized":
        raise ValueError(f"{path}: input layer input_rgb_image_sized expected")
    arrays = {"mean_rgb": r.floats(3), "input_size": np.array([r.int(), r.int()], np.int64)}
    try:
        layers = _read_layers(r)
    except (IndexError, ValueError) as exc:  # IndexError: the bytes ran out inside a layer
        raise ValueError(f"{path}: unreadable network ({exc or 'truncated'})") from None
    if r.pos != len(r.data):
        raise ValueError(f"{path}: {len(r.data) - r.pos} bytes left after the network")
    arrays.update(_anet_arrays(layers, path))
    return arrays


#: dlib's serialisation names (with their format versions) of the layers anet_type uses.
_LAYER_KINDS = {
    "con_4": "con",
    "affine_": "affine",
    "relu_": "relu",
    "max_pool_2": "max_pool",
    "avg_pool_2": "avg_pool",
    "add_prev_": "add_prev",
    "fc_2": "fc",
}


def _read_layers(r: Reader) -> list[tuple[str, dict]]:
    """Every computational layer in input-to-output order: (kind, its parameters), kinds as in _LAYER_KINDS."""

    def alias() -> None:  # alias_tensor: version + shape (views into params)
        for _ in range(5):
            r.int()

    layers, bottom = [], True
    while r.pos < len(r.data):
        name = r.string()
        if name == "con_4":
            params = r.tensor().ravel()
            n, rows, cols, sy, sx, py, px = (r.int() for _ in range(7))
            alias(), alias(), r.floats(4)  # filters, biases, learning-rate and weight-decay multipliers
            k = (params.size - n) // (n * rows * cols)
            w = params[: n * k * rows * cols].reshape(n, k, rows, cols)
            info = {"w": w, "b": params[n * k * rows * cols :], "stride": (sy, sx), "padding": (py, px)}
        elif name == "affine_":
            params = r.tensor().ravel()
            alias(), alias(), r.int()  # gamma, beta, mode
            info = {"gamma": params[: params.size // 2], "beta": params[params.size // 2 :]}
        elif name in ("max_pool_2", "avg_pool_2"):
            rows, cols, sy, sx, py, px = (r.int() for _ in range(6))
            info = {"size": (rows, cols), "stride": (sy, sx), "padding": (py, px)}
        elif name in ("relu_", "add_prev_"):
            info = {}
        elif name == "fc_2":
            n_out, n_in = r.int(), r.int()
            params = r.tensor().ravel()
            alias(), alias()
            info = {"w": params[: n_in * n_out].reshape(n_in, n_out), "bias_mode": r.int()}
            r.floats(4)
        else:
            raise ValueError(f"byte {r.pos}: layer {name!r} is not one of anet_type's")
        layers.append((_LAYER_KINDS[name], info))
        for _ in range(3):  # add_layer's flags: setup called, gradient stale, output disabled
            r.bool()
        for _ in range(3):  # x_grad, cached_output, params_grad: empty in a saved model
            r.tensor()
        if bottom:  # the layer on the input also records the input's sample expansion factor
            r.int()
            bottom = False
    return layers


def _anet_arrays(layers: list[tuple[str, dict]], path) -> dict[str, np.ndarray]:
    """The layer list checked against anet_type's grammar, as flat arrays for the .npz cache."""
    names = [n for n, _ in layers]

    def expect(i: int, pattern: list[str]) -> None:
        if names[i : i + len(pattern)] != pattern:
            raise ValueError(f"{path}: layers {i}..: expected {pattern}, found {names[i : i + len(pattern)]}")

    expect(0, ["con", "affine", "relu", "max_pool"])
    pool = layers[3][1]
    out = {**_conv_arrays("stem", layers[0][1], layers[1][1]), "stem_pool": _pool_cfg(pool)}
    i, blocks = 4, []
    while names[i : i + 1] == ["con"]:
        down = names[i + 5 : i + 6] == ["avg_pool"]
        expect(i, ["con", "affine", "relu", "con", "affine"] + ["avg_pool"] * down + ["add_prev", "relu"])
        j = len(blocks)
        out.update(_conv_arrays(f"b{j}a", layers[i][1], layers[i + 1][1]))
        out.update(_conv_arrays(f"b{j}b", layers[i + 3][1], layers[i + 4][1]))
        if down:
            out[f"b{j}pool"] = _pool_cfg(layers[i + 5][1])
        blocks.append(down)
        i += 7 + down
    expect(i, ["avg_pool", "fc"])
    if layers[i][1]["size"] != (0, 0) or layers[i + 1][1]["bias_mode"] != 1 or i + 2 != len(layers):
        raise ValueError(f"{path}: expected avg_pool_everything and fc_no_bias to end the network")
    out["downsample"] = np.array(blocks, bool)
    out["fc"] = layers[i + 1][1]["w"]
    return out


def _conv_arrays(key: str, con: dict, affine: dict) -> dict[str, np.ndarray]:
    return {
        f"{key}_w": con["w"],
        f"{key}_b": con["b"],
        f"{key}_cfg": np.array([*con["stride"], *con["padding"]], np.int64),
        f"{key}_gamma": affine["gamma"],
        f"{key}_beta": affine["beta"],
    }


def _pool_cfg(pool: dict) -> np.ndarray:
    return np.array([*pool["size"], *pool["stride"], *pool["padding"]], np.int64)


def load_arrays(path: str | Path | None = None) -> dict[str, np.ndarray]:
    """The network's arrays, from the .npz cache (parsing dlib's 22 MB file takes ~1 s)."""
    return cached_arrays(path or model_path(), CACHE_FORMAT, read_dlib)


@lru_cache(maxsize=1)
def default_arrays() -> dict[str, np.ndarray]:
    """face_recognition_models' network, read once a process (the fork server preloads it).

    Where that package is not installed (a GPU host with torch and numpy only), the .npz cache
    copied from a machine that has it is used: torch needs nothing else.
    """
    try:
        return load_arrays()
    except ImportError:
        found = sorted(cache_dir().glob(f"{Path(MODEL_FILE).stem}-*-v{CACHE_FORMAT}.npz"))
        if not found:
            raise ImportError(
                f"face_recognition_models is not installed and {cache_dir()} holds no cached {MODEL_FILE} "
                "arrays: pip install face_recognition_models, or copy the .npz from a machine that has it"
            ) from None
        with np.load(found[-1]) as z:
            return {k: z[k] for k in z.files}


# ---------------------------------------------------------------- the network in torch
def _network(arrays: dict[str, np.ndarray], device: str):
    """anet_type as a torch module; each affine (batch norm folded by dlib) is folded into its conv."""
    import torch
    import torch.nn.functional as F

    def conv(key: str) -> tuple:
        gamma = torch.from_numpy(arrays[f"{key}_gamma"])
        w = torch.from_numpy(arrays[f"{key}_w"]) * gamma[:, None, None, None]
        b = torch.from_numpy(arrays[f"{key}_b"]) * gamma + torch.from_numpy(arrays[f"{key}_beta"])
        sy, sx, py, px = arrays[f"{key}_cfg"].tolist()
        return w.to(device), b.to(device), (sy, sx), (py, px)

    def pool(cfg: np.ndarray) -> tuple:
        ry, rx, sy, sx, py, px = cfg.tolist()
        return (ry, rx), (sy, sx), (py, px)

    class AnetType(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.mean = torch.from_numpy(arrays["mean_rgb"]).to(device).view(1, 3, 1, 1)
            self.stem = conv("stem")
            self.stem_pool = pool(arrays["stem_pool"])
            self.blocks = [
                (conv(f"b{j}a"), conv(f"b{j}b"), pool(arrays[f"b{j}pool"]) if down else None)
                for j, down in enumerate(arrays["downsample"].tolist())
            ]
            self.fc = torch.from_numpy(arrays["fc"]).to(device)

        def forward(self, chips: torch.Tensor) -> torch.Tensor:
            # dlib's input_rgb_image: (pixel - channel mean) / 256, RGB planes
            x = (chips.permute(0, 3, 1, 2).float() - self.mean) / 256.0
            x = F.relu(F.conv2d(x, *self.stem))
            x = F.max_pool2d(x, *self.stem_pool)
            for a, b, down in self.blocks:
                y = F.conv2d(F.relu(F.conv2d(x, *a)), *b)
                x = F.relu(_add_prev(F.avg_pool2d(x, *down) if down else x, y))
            return x.mean(dim=(2, 3)) @ self.fc

    return AnetType().eval()


def _add_prev(a, b):
    """dlib's add_prev: tensors of different sizes are added top-left aligned, zeros where one is
    missing (a strided block's 3x3 output onto its 4x4 pooled input; the input's 128 channels onto
    the first 128 of the block's 256)."""
    import torch.nn.functional as F

    shape = [max(p, q) for p, q in zip(a.shape[1:], b.shape[1:])]

    def pad(t):
        dc, dh, dw = (s - n for s, n in zip(shape, t.shape[1:]))
        return F.pad(t, (0, dw, 0, dh, 0, dc)) if dc or dh or dw else t

    return pad(a) + pad(b)


@lru_cache(maxsize=4)
def _loaded(device: str):
    """One network a device and process: FaceEncoder instances share it.

    On CUDA, cuDNN would run float32 convolutions in TF32 (a 10-bit mantissa) on Ampere and later
    GPUs; that is turned off for the process, so the descriptors stay dlib's float32 numbers.
    """
    if device.startswith("cuda"):
        import torch

        torch.backends.cudnn.allow_tf32 = False
    return _network(default_arrays(), device)


class FaceEncoder:
    """dlib's face encoder evaluated by torch in batches, CPU or CUDA; weights loaded once a process.

    `threads` sets torch's CPU threads for the process (None: torch's default, every core); curation
    workers pass 1, being one process a core already.
    """

    def __init__(self, device: str = "auto", batch_size: int = 64, threads: int | None = None):
        if batch_size < 1:
            raise ValueError(f"batch_size must be at least 1, got {batch_size}")
        self.device = select_device(device)
        self.batch_size = batch_size
        if threads is not None:
            import torch

            torch.set_num_threads(threads)

    def chips(self, image: np.ndarray, landmarks68: np.ndarray) -> np.ndarray:
        """(150, 150, 3) uint8: dlib's chip of one face (see face_chip)."""
        return face_chip(image, landmarks68)

    def encode(self, chips: np.ndarray) -> np.ndarray:
        """(n, 128) float32 descriptors of (n, 150, 150, 3) uint8 chips, batch_size at a time.

        The last batch is padded to batch_size: torch's kernels give a face the same bits whatever
        its neighbours, its place in the batch or the thread count, but not whatever the batch size
        (on this CPU 1-3 faces take another kernel than 4 or more: 3e-7 apart). Fixed batches make a
        face's descriptor independent of how many faces came with it, so curated tables are
        identical across shard sizes and worker counts.
        """
        import torch

        chips = np.asarray(chips, np.uint8).reshape(-1, CHIP_SIZE, CHIP_SIZE, 3)
        out = np.zeros((len(chips), EMBEDDING_DIM), np.float32)
        net = _loaded(self.device)
        with torch.inference_mode():
            for start in range(0, len(chips), self.batch_size):
                batch = chips[start : start + self.batch_size]
                n = len(batch)
                if n < self.batch_size:
                    batch = np.concatenate([batch, np.zeros((self.batch_size - n, *batch.shape[1:]), np.uint8)])
                out[start : start + n] = net(torch.from_numpy(batch).to(self.device))[:n].cpu().numpy()
        return out


def embed_faces(
    images: Sequence[np.ndarray], landmarks68_list: Sequence[np.ndarray], encoder: FaceEncoder | None = None
) -> np.ndarray:
    """(n, 128) float32: one descriptor a (image, 68 points) pair, chips cut and encoded a batch at a time."""
    encoder = encoder or FaceEncoder()
    if len(images) != len(landmarks68_list):
        raise ValueError(f"{len(images)} images but {len(landmarks68_list)} landmark sets")
    out = np.zeros((len(images), EMBEDDING_DIM), np.float32)
    for start in range(0, len(images), encoder.batch_size):
        stop = min(start + encoder.batch_size, len(images))
        chips = np.stack([encoder.chips(images[i], landmarks68_list[i]) for i in range(start, stop)])
        out[start:stop] = encoder.encode(chips)
    return out
