"""The drift battery: one Check per test, corrected for testing many at once, and one verdict.

Tests with a p-value (label shift, predicted-class shift, one KS test per quality feature, the
embedding MMD) form one family: their p-values are Holm-adjusted (or Bonferroni), so a batch
drawn from the reference distribution fails the whole battery with probability at most
`drift.alpha`. A distribution test fails when its adjusted p-value is below alpha AND its PSI
reaches the check's minimum (`feature_min_psi`, `label_min_psi`; 0 by default, which keeps the
battery at alpha: measured 0.043 over 300 batches, where 0.05 gave 0.01). Raise them for very
large batches, where a statistically certain but negligible shift is not worth an alarm. The
face-found rate is a plain threshold (`min_face_found_rate`), outside the family.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from fer_data.drift import stats
from fer_data.drift.config import DriftConfig
from fer_data.drift.ingest import Batch
from fer_data.drift.profile import Profile

PASS, FAIL, SKIPPED = "pass", "fail", "skipped"


@dataclass
class Check:
    """One test of the battery, as drift.json records it."""

    name: str  # label_shift, predicted_class_shift, covariate.<feature>, embedding_shift, face_found_rate
    test: str  # what was computed
    statistic: float | None = None
    p_value: float | None = None
    p_adjusted: float | None = None
    distance: float | None = None  # PSI (class mix, features) or MMD^2 (embeddings)
    threshold: dict[str, float] = field(default_factory=dict)
    verdict: str = SKIPPED
    n_reference: int | None = None
    n_batch: int | None = None
    detail: str = ""
    # what the report draws (not in drift.json): shares per bin or class, reference vs batch
    extra: dict[str, Any] = field(default_factory=dict, repr=False)

    def record(self) -> dict[str, Any]:
        out = asdict(self)
        out.pop("extra")
        return out


def class_counts(labels: Sequence[str | None], classes: Sequence[str]) -> np.ndarray:
    index = {c: i for i, c in enumerate(classes)}
    counts = np.zeros(len(classes), int)
    for lab in labels:
        if lab in index:
            counts[index[lab]] += 1
    return counts


def class_shift(name: str, ref_counts: np.ndarray, batch_counts: np.ndarray, cfg: DriftConfig, what: str) -> Check:
    """Chi-square (homogeneity) + PSI between two class-count vectors."""
    n = int(batch_counts.sum())
    check = Check(
        name,
        f"chi-square + PSI on the {what} class mix",
        threshold={"alpha": cfg.alpha, "min_psi": cfg.label_min_psi},
        n_reference=int(ref_counts.sum()),
        n_batch=n,
    )
    if n < cfg.min_labelled:
        check.detail = f"{n} {what} rows in the batch, fewer than drift.min_labelled ({cfg.min_labelled})"
        return check
    check.statistic, check.p_value = stats.chi2_counts(ref_counts, batch_counts)
    ref_share, batch_share = ref_counts / max(ref_counts.sum(), 1), batch_counts / n
    check.distance = stats.psi(ref_share, batch_share)
    check.extra = {"reference": ref_share.tolist(), "batch": batch_share.tolist()}
    return check


def covariate_shift(feature: str, profile: Profile, values: np.ndarray, cfg: DriftConfig) -> Check:
    """KS (batch vs the reference's sample) + PSI (on the reference's quantile bins) for one feature."""
    ref = profile.features[feature]
    present = values[~np.isnan(values)]
    check = Check(
        f"covariate.{feature}",
        "Kolmogorov-Smirnov + PSI",
        threshold={"alpha": cfg.alpha, "min_psi": cfg.feature_min_psi},
        n_reference=ref.n,
        n_batch=len(present),
    )
    if ref.n == 0 or len(present) == 0:
        check.detail = "no values in the " + ("reference" if ref.n == 0 else "batch")
        return check
    check.statistic, check.p_value = stats.ks(ref.sample, present)
    shares = stats.bin_shares(present, ref.psi_edges)
    check.distance = stats.psi(ref.psi_shares, shares)
    check.extra = {"values": present, "psi_shares": shares}
    return check


def embedding_shift(profile: Profile, batch: Batch, cfg: DriftConfig) -> Check:
    emb = cfg.embedding
    ref, cur = profile.embeddings, batch.embeddings
    exact = emb.method == "exact" or (
        emb.method == "auto"
        and (0 if ref is None else len(ref)) + (0 if cur is None else len(cur)) <= emb.exact_max_rows
    )
    kernel = "Gaussian kernel" if exact else f"{emb.random_features} random Fourier features of a Gaussian kernel"
    check = Check(
        "embedding_shift",
        f"MMD ({kernel}), {emb.permutations} permutations",
        threshold={"alpha": cfg.alpha},
        n_reference=0 if ref is None else len(ref),
        n_batch=0 if cur is None else len(cur),
    )
    if ref is None or cur is None or min(len(ref), len(cur)) < emb.min_rows:
        check.detail = "too few face embeddings (faces.embeddings off when the data was curated?)"
        return check
    if exact:
        res = stats.mmd_permutation_test(ref, cur, emb.permutations, emb.chunk_rows, cfg.seed)
    else:
        res = stats.mmd_random_features_test(ref, cur, emb.permutations, emb.random_features, emb.chunk_rows, cfg.seed)
    check.statistic, check.p_value, check.distance = res.mmd2, res.p_value, res.mmd2
    check.detail = f"kernel width {res.bandwidth:.3g}"
    return check


def face_found(batch: Batch, cfg: DriftConfig) -> Check:
    rate = batch.face_found_rate
    check = Check(
        "face_found_rate",
        "share of inputs where a face was found",
        statistic=rate,
        threshold={"min": cfg.min_face_found_rate},
        n_batch=batch.searched,
    )
    if rate is None:
        check.detail = "the batch was already curated: no face-finding counts"
        return check
    check.verdict = PASS if rate >= cfg.min_face_found_rate else FAIL
    return check


def battery(
    profile: Profile,
    batch: Batch,
    cfg: DriftConfig,
    predicted: tuple[np.ndarray, np.ndarray] | None = None,
) -> list[Check]:
    """Every check of a batch against the profile; `predicted` = (reference, batch) predicted-class counts."""
    checks = [face_found(batch, cfg)]
    checks.append(
        class_shift(
            "label_shift",
            np.array([profile.class_counts.get(c, 0) for c in profile.classes]),
            class_counts(batch.labels, profile.classes),
            cfg,
            "labelled",
        )
    )
    if predicted is not None:
        checks.append(class_shift("predicted_class_shift", *predicted, cfg, "predicted"))
    checks += [covariate_shift(f, profile, batch.features[f], cfg) for f in cfg.features if f in profile.features]
    if cfg.embedding.enabled:
        checks.append(embedding_shift(profile, batch, cfg))
    decide(checks, cfg)
    return checks


def decide(checks: list[Check], cfg: DriftConfig) -> None:
    """Adjust the family's p-values and set each tested check's verdict."""
    family = [c for c in checks if c.p_value is not None]
    adjust = stats.holm if cfg.correction == "holm" else stats.bonferroni
    for c, p in zip(family, adjust([c.p_value for c in family]), strict=True):
        c.p_adjusted = p
        significant = p < cfg.alpha
        large = c.distance is None or "min_psi" not in c.threshold or c.distance >= c.threshold["min_psi"]
        c.verdict = FAIL if significant and large else PASS


def summary(checks: list[Check]) -> dict[str, Any]:
    failed = [c.name for c in checks if c.verdict == FAIL]
    return {
        "passed": not failed,
        "verdict": FAIL if failed else PASS,
        "failed_checks": failed,
        "checks": {c.name: c.record() for c in checks},
    }
