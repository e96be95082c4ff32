"""Corpus benchmarks (BENCHMARKS.md, "Corpus"): near duplicates, identities, the whole step at scale.

    python bench/bench_corpus.py neardup  --work /tmp/bench-corpus     # needs ../shared/realdata
    python bench/bench_corpus.py neardup  --work /tmp/bench-corpus --dup "" --dup neighbours=16   # compare settings
    python bench/bench_corpus.py identity --work /tmp/bench-corpus     # needs ../shared/realdata
    python bench/bench_corpus.py scale    --work /tmp/bench-corpus --rows 4000 12000 35887

neardup: real faces (JAFFE, CK+ first and peak frames, FER2013 images) written again under the
transformations copies go through (rescaled, JPEG re-encoded, a few pixels cropped off, rotated,
brighter, mirrored, all at once), every version curated by the pipeline (detection, landmarks,
alignment, embeddings when the curation makes them), then the corpus's duplicate detection over
all of them at once. Truth: two rows are copies when they come from the same original file.
Negatives are every other pair, the hardest being different people of similar pose (aligned
faces put the eyes in the same place). Pairs of one person in two different photos (JAFFE repeats
an expression three times; CK+ first frames of one session) are counted apart: not copies, not
different people.

identity: JAFFE and CK+ curated, embeddings from the curated column (or fer_data.faces.embed on
the originals when the curation has none), subject ids hidden, clustered; pairwise precision and
recall against the hidden ids.

scale: N synthetic curated rows made from real aligned faces (each a blend of two faces, shifted
and noised, so that rows differ; 1 % planted exact and 1 % near copies; one 128-d descriptor per
synthetic person, 1-4 photos a person), then `build_corpus` in a fresh process: wall time per
step and peak RSS.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

import cv2
import numpy as np
import pandas as pd

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "tests"))

REALDATA = Path(os.environ.get("FER_DATA_REALDATA") or REPO.parent / "shared" / "realdata")
TRANSFORMS = ("orig", "rescale", "jpeg", "crop", "rotate", "bright", "mirror", "combo")


# ---------------------------------------------------------------- transformations of an original image


def rescale(img: np.ndarray) -> np.ndarray:
    """Half size for large frames, double for small crops (FER2013's 48 px)."""
    f = 2.0 if max(img.shape[:2]) <= 64 else 0.5
    return cv2.resize(img, None, fx=f, fy=f, interpolation=cv2.INTER_AREA if f < 1 else cv2.INTER_CUBIC)


def jpeg(img: np.ndarray, quality: int = 50) -> np.ndarray:
    _, buf = cv2.imencode(".jpg", img, [cv2.IMWRITE_JPEG_QUALITY, quality])
    return cv2.imdecode(buf, cv2.IMREAD_UNCHANGED)


def crop(img: np.ndarray, frac: float = 0.04) -> np.ndarray:
    """A few pixels off the left and top edges (2 px of a 48 px crop, 10 of a 256 px frame)."""
    h, w = img.shape[:2]
    dy, dx = max(1, round(h * frac)), max(1, round(w * frac))
    return img[dy:, dx:]


def rotate(img: np.ndarray, degrees: float = 5.0) -> np.ndarray:
    h, w = img.shape[:2]
    m = cv2.getRotationMatrix2D((w / 2, h / 2), degrees, 1.0)
    return cv2.warpAffine(img, m, (w, h), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)


def bright(img: np.ndarray, delta: int = 30) -> np.ndarray:
    return np.clip(img.astype(np.int16) + delta, 0, 255).astype(np.uint8)


def mirror(img: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(img[:, ::-1])


def combo(img: np.ndarray) -> np.ndarray:
    return mirror(bright(jpeg(rotate(crop(rescale(img)), 3.0), 70), 20))


APPLY = {
    "orig": lambda x: x,
    "rescale": rescale,
    "jpeg": jpeg,
    "crop": crop,
    "rotate": rotate,
    "bright": bright,
    "mirror": mirror,
    "combo": combo,
}


# ---------------------------------------------------------------- real faces, as folder trees


def originals() -> list[tuple[str, str, str, Path]]:
    """(group, person, class folder, file) of the real faces the benchmarks use."""
    jaffe = {
        "AN": "angry",
        "DI": "disgust",
        "FE": "fear",
        "HA": "happy",
        "NE": "neutral",
        "SA": "sad",
        "SU": "surprise",
    }
    out = []
    for f in sorted((REALDATA / "jaffe").glob("*.tiff")):
        subject, expr = f.name.split(".")[:2]
        out.append(("jaffe", f"jaffe:{subject}", jaffe[expr[:2]], f))
    ck = REALDATA / "ckplus"
    for emo in sorted((ck / "Emotion").rglob("*_emotion.txt")):
        code = int(float(emo.read_text().split()[0]))
        seq = ck / "cohn-kanade-images" / emo.parent.relative_to(ck / "Emotion")
        frames = sorted(seq.glob("*.png"))
        names = ["neutral", "angry", "contempt", "disgust", "fear", "happy", "sad", "surprise"]
        if names[code] == "contempt":
            continue
        person = f"ckplus:{seq.parent.name}"
        out += [("ckplus", person, "neutral", frames[0]), ("ckplus", person, names[code], frames[-1])]
    for f in sorted((REALDATA / "fer2013" / "images").rglob("*.jpg")):
        out.append(("fer2013", f"fer2013:{f.stem}", f.parent.name, f))  # FER2013: one person a file (assumed)
    return out


def write_versions(work: Path, faces: list[tuple[str, str, str, Path]]) -> dict[tuple[str, str], Path]:
    """work/trees/<group>/<transform>/<class>/<group>__<stem>.png for every face and transformation."""
    from fer_data.imageio import read_grey

    roots = {}
    for group, _, cls, path in faces:
        img, _ = read_grey(path)
        for t in TRANSFORMS:
            root = work / "trees" / group / t
            roots[(group, t)] = root
            dest = root / cls / f"{group}__{path.stem}.png"
            if not dest.exists():
                dest.parent.mkdir(parents=True, exist_ok=True)
                cv2.imwrite(str(dest), APPLY[t](img))
    return roots


def curate_versions(work: Path, roots: dict[tuple[str, str], Path], embeddings: bool) -> list[Path]:
    from fer_data import params as params_mod
    from fer_data.curate import curate

    out = []
    for (group, t), root in sorted(roots.items()):
        dest = work / "curated" / f"{group}-{t}"
        if not (dest / "metrics.json").exists():
            raw = {
                "run": {"workers": 1, "shard_size": 512},
                "sources": {"folder": {"precropped": group == "fer2013", "subject_pattern": None}},
            }
            if embeddings:
                raw["faces"] = {"embeddings": True}
            curate("folder", root, dest, params_mod.resolve(raw))
            m = json.loads((dest / "metrics.json").read_text())
            m["source"] = f"{group}-{t}"
            (dest / "metrics.json").write_text(json.dumps(m))
        out.append(dest)
    return out


def _embeddings_supported() -> bool:
    from fer_data import params as params_mod

    return "embeddings" in params_mod.DEFAULTS["faces"]


# ---------------------------------------------------------------- near duplicates


def load_neardup(work: Path):
    """The benchmark's curated versions: (meta with original/person/transform, embeddings, tables)."""
    from fer_data.corpus import inputs

    faces = originals()
    person = {f"{g}__{p.stem}": who for g, who, _, p in faces}
    emb_on = _embeddings_supported()
    tables = [inputs.table_from_dir(p) for p in curate_versions(work, write_versions(work, faces), emb_on)]
    meta, emb = inputs.load_meta(tables, with_embeddings=emb_on)
    meta["original"] = meta["locator"].str.extract(r"/([^/]+)\.png$")[0]
    meta["person"] = meta["original"].map(person)
    meta["transform"] = meta["source"].str.split("-").str[1]
    return meta, emb, tables


def bench_neardup(work: Path, settings: list[dict]) -> dict:
    """Each setting of DuplicateParams (overrides of the defaults) over the same curated versions."""
    from fer_data.corpus import features

    meta, emb, tables = load_neardup(work)
    start = time.perf_counter()
    feats = features.compute(tables)
    t_feat = time.perf_counter() - start
    runs = []
    for overrides in settings:
        result = {"rows": len(meta), "embeddings": emb is not None, "params": overrides or "defaults"}
        result.update(neardup_once(meta, emb, feats, overrides))
        result["seconds"]["features"] = round(t_feat, 2)
        print(json.dumps(result, default=str), flush=True)
        runs.append(result)
    return runs[0] if len(runs) == 1 else {"runs": runs}


def neardup_once(meta: pd.DataFrame, emb: np.ndarray | None, feats, overrides: dict) -> dict:
    from fer_data.corpus import dups
    from fer_data.corpus.groups import UnionFind
    from fer_data.corpus.params import DuplicateParams

    p = DuplicateParams(**overrides)
    start = time.perf_counter()
    pairs, flips = dups.candidate_pairs(feats, p)
    t_cand = time.perf_counter() - start
    start = time.perf_counter()
    confirmed = dups.confirm(pairs, flips, feats, emb, meta["label"].to_numpy(dtype=object), p)
    t_conf = time.perf_counter() - start
    uf = UnionFind(len(meta))
    uf.union_labels(feats.sha)
    uf.union_pairs(confirmed)
    roots = uf.roots()
    result = {
        "seconds": {"candidates": round(t_cand, 2), "confirm": round(t_conf, 2)},
        "candidate_pairs": len(pairs),
        "confirmed_pairs": len(confirmed),
    }
    result.update(pairwise(meta, roots))
    result["recall_by_transform"] = recall_by_transform(meta, roots)
    group = meta["source"].str.split("-").str[0]
    result["by_group"] = {g: pairwise(meta[group == g], roots[(group == g).to_numpy()]) for g in sorted(set(group))}
    return result


def pairwise(meta: pd.DataFrame, roots: np.ndarray) -> dict:
    """Pairwise precision and recall of the duplicate groups against the original files (no all-pairs loop)."""
    f = pd.DataFrame({"root": roots, "orig": meta["original"].to_numpy(), "person": meta["person"].to_numpy()})

    def n_pairs(counts: pd.Series) -> int:
        return int((counts * (counts - 1) // 2).sum())

    predicted = n_pairs(f.groupby("root").size())
    true = n_pairs(f.groupby("orig").size())
    tp = n_pairs(f.groupby(["root", "orig"]).size())
    same_person = n_pairs(f.groupby(["root", "person"]).size()) - tp  # one person, two photos, grouped
    fp_people = predicted - tp - same_person  # different people grouped
    return {
        "pairs_true": true,
        "pairs_predicted": predicted,
        "precision": round(tp / max(tp + fp_people, 1), 4),
        "recall": round(tp / max(true, 1), 4),
        "different_people_grouped_pairs": fp_people,
        "same_person_other_photo_grouped_pairs": same_person,
        "precision_counting_same_person_as_wrong": round(tp / max(predicted, 1), 4),
    }


def recall_by_transform(meta: pd.DataFrame, roots: np.ndarray) -> dict:
    """Per transformation: the share of copies in the same group as their original."""
    f = pd.DataFrame({"root": roots, "orig": meta["original"], "t": meta["transform"]})
    base = f[f["t"] == "orig"].set_index("orig")["root"]
    out = {}
    for t, rows in f[f["t"] != "orig"].groupby("t"):
        known = rows[rows["orig"].isin(base.index)]
        out[t] = round(float((known["root"].to_numpy() == base.loc[known["orig"]].to_numpy()).mean()), 4)
    return out


# ---------------------------------------------------------------- identities


def bench_identity(work: Path, distances: list[float]) -> dict:
    from fer_data import params as params_mod
    from fer_data.corpus import identity, inputs
    from fer_data.corpus.params import IdentityParams
    from fer_data.curate import curate

    emb_on = _embeddings_supported()
    results = {}
    curated = {}
    for name, root in (("jaffe", REALDATA / "jaffe"), ("ckplus", REALDATA / "ckplus")):
        dest = work / "identity" / name
        if not (dest / "metrics.json").exists():
            raw = {"run": {"workers": 1}, **({"faces": {"embeddings": True}} if emb_on else {})}
            curate(name, root, dest, params_mod.resolve(raw))
        curated[name] = (inputs.table_from_dir(dest), root)
    for label, names in (("jaffe", ["jaffe"]), ("ckplus", ["ckplus"]), ("jaffe+ckplus", ["jaffe", "ckplus"])):
        tables = [curated[n][0] for n in names]
        meta, emb = inputs.load_meta(tables, with_embeddings=True)
        missing = ~np.isfinite(emb[:, 0])
        if missing.any():
            emb[missing] = encode_originals(meta[missing], tables, {n: curated[n][1] for n in names})
        truth = meta["subject_id"].to_numpy(dtype=object)
        hidden = np.full(len(meta), None, dtype=object)
        for d in distances:
            roots = identity.cluster(emb, hidden, meta["source"].tolist(), IdentityParams(max_distance=d))
            results[f"{label} @ {d}"] = pairwise_ids(roots, truth)
    results["embeddings_from"] = "curated column" if emb_on else "fer_data.faces.embed on the originals"
    return results


def encode_originals(meta: pd.DataFrame, tables: list, roots: dict[str, Path]) -> np.ndarray:
    """Descriptors of rows whose curated table has none: the original image and its 68 landmarks."""
    from fer_data.faces.embed import embed_faces
    from fer_data.imageio import read_image

    points = {}
    for table in tables:
        for batch in table.batches(["sample_id", "landmarks_original"]):
            for sid, lm in zip(batch.column(0).to_pylist(), batch.column(1).to_pylist()):
                points[sid] = np.asarray(lm, np.float32).reshape(68, 2)
    images = []
    for source, locator in zip(meta["source"], meta["locator"]):
        grey, rgb, _ = read_image(roots[source] / locator, colour=True)
        images.append(rgb if rgb is not None else grey)
    return embed_faces(images, [points[s] for s in meta["sample_id"]])


def pairwise_ids(roots: np.ndarray, truth: np.ndarray) -> dict:
    f = pd.DataFrame({"root": roots, "truth": truth})

    def n_pairs(counts: pd.Series) -> int:
        return int((counts * (counts - 1) // 2).sum())

    tp = n_pairs(f.groupby(["root", "truth"]).size())
    pred = n_pairs(f.groupby("root").size())
    true = n_pairs(f.groupby("truth").size())
    return {
        "precision": round(tp / max(pred, 1), 4),
        "recall": round(tp / max(true, 1), 4),
        "clusters": int(f["root"].nunique()),
    }


# ---------------------------------------------------------------- scale


def bench_scale(work: Path, sizes: list[int], duplicates: dict) -> dict:
    """build_corpus on N synthetic rows in a fresh process (DUPLICATES: overrides of corpus.duplicates)."""
    out = {}
    params = {"corpus": {"duplicates": duplicates}} if duplicates else {}
    for n in sizes:
        folder = work / "scale" / f"rows-{n}"
        if not (folder / "metrics.json").exists():
            make_synthetic(folder, n)
        code = (
            "import json,resource,sys,time;"
            "from fer_data.corpus import build_corpus, table_from_dir;"
            "t=time.perf_counter();"
            f"build_corpus([table_from_dir({str(folder)!r})], {str(work / 'scale' / f'corpus-{n}')!r}, {params!r});"
            "print(json.dumps({'seconds': round(time.perf_counter()-t,1),"
            "'peak_rss_mb': round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss/1024)}))"
        )
        res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, check=True)
        result = json.loads(res.stdout.strip().splitlines()[-1])
        metrics = json.loads((work / "scale" / f"corpus-{n}" / "metrics.json").read_text())
        result.update(
            steps=metrics["seconds"],
            kept=metrics["rows_kept"],
            duplicates=metrics["duplicates"],
            identities=metrics["identities"]["identities"],
        )
        out[n] = result
        print(n, result, flush=True)
    return out


def make_synthetic(folder: Path, n: int, seed: int = 0) -> None:
    """N curated rows from real aligned faces: blends of two faces, shifted and noised; planted copies."""
    import corpus_tables as ct
    import pyarrow as pa
    import pyarrow.parquet as pq

    from fer_data.schema import CURATED

    base = real_aligned_faces()
    rng = np.random.default_rng(seed)
    fields = list(CURATED)
    if "embedding" not in CURATED.names:
        fields.append(pa.field("embedding", pa.list_(pa.float32(), 128)))
    schema = pa.schema(fields)
    part = folder / "curated.parquet" / "part-00000.parquet"
    part.parent.mkdir(parents=True, exist_ok=True)
    writer = pq.ParquetWriter(part, schema, compression="zstd")
    people = rng.integers(0, max(n // 2, 1), size=n)  # 1-4 photos a person on average ~2
    batch, made = [], []
    for i in range(n):
        kind = rng.random()
        if made and kind < 0.01:
            img, who = made[rng.integers(len(made))]  # an exact copy
        elif made and kind < 0.02:
            src, who = made[rng.integers(len(made))]
            img = ct.copy_of(src)  # a near copy
        else:
            a, b = base[rng.integers(len(base))], base[rng.integers(len(base))]
            w = rng.uniform(0.55, 0.8)
            img = cv2.addWeighted(a, w, b, 1 - w, 0)
            m = np.float32([[1, 0, rng.uniform(-1.5, 1.5)], [0, 1, rng.uniform(-1.5, 1.5)]])
            img = cv2.warpAffine(img, m, (48, 48), borderMode=cv2.BORDER_REPLICATE)
            img = np.clip(img + rng.normal(0, 3, img.shape), 0, 255).astype(np.uint8)
            who = int(people[i])
        if len(made) < 2000:
            made.append((img, who))
        row = ct.row("synthetic", f"fer2013.csv:{i + 2}", img, ct.labelled(int(rng.integers(7))))
        row["embedding"] = [float(x) for x in ct.photo_vector(who, i)]
        batch.append({k: v for k, v in row.items() if k in schema.names})
        if len(batch) == 2048:
            writer.write_table(pa.Table.from_pylist(batch, schema=schema))
            batch = []
    if batch:
        writer.write_table(pa.Table.from_pylist(batch, schema=schema))
    writer.close()
    (folder / "metrics.json").write_text(json.dumps({"source": "synthetic", "read": n, "curated": n}))


def real_aligned_faces() -> list[np.ndarray]:
    """Aligned 48 px faces of the benchmark's real originals (curated once under WORK by neardup), else LFW."""
    found = []
    for part in Path(ARGS.work, "curated").glob("*-orig/curated.parquet/*.parquet"):
        import pyarrow.parquet as pq

        for blob in pq.read_table(part, columns=["image"]).column("image").to_pylist():
            found.append(np.frombuffer(blob, np.uint8).reshape(48, 48))
    if not found:
        import corpus_tables as ct

        found = [ct.face(i) for i in range(100)]
    return found


def main() -> None:
    global ARGS
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("what", choices=["neardup", "identity", "scale"])
    parser.add_argument("--work", default="/tmp/bench-corpus")
    parser.add_argument("--rows", type=int, nargs="+", default=[4000, 12000, 35887])
    parser.add_argument("--distances", type=float, nargs="+", default=[0.4, 0.45, 0.5, 0.55])
    parser.add_argument(
        "--dup",
        action="append",
        default=[],
        metavar="KEY=VALUE,...",
        help="a setting of corpus.duplicates to measure (neardup: repeat to compare several; default: the defaults)",
    )
    ARGS = parser.parse_args()
    work = Path(ARGS.work)
    work.mkdir(parents=True, exist_ok=True)
    if ARGS.what == "neardup":
        result = bench_neardup(work, [parse_setting(s) for s in ARGS.dup] or [{}])
    elif ARGS.what == "identity":
        result = bench_identity(work, ARGS.distances)
    else:
        result = bench_scale(work, ARGS.rows, parse_setting(ARGS.dup[0]) if ARGS.dup else {})
    result["peak_rss_mb"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)
    print(json.dumps(result, indent=2, default=str))


def parse_setting(text: str) -> dict:
    """'candidate_correlation=0.6,neighbours=16' -> {'candidate_correlation': 0.6, 'neighbours': 16}."""
    out = {}
    for item in filter(None, text.split(",")):
        key, value = item.split("=", 1)
        out[key.strip()] = json.loads(value)
    return out


ARGS: argparse.Namespace

if __name__ == "__main__":
    main()
