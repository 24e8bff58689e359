"""Accuracy predictor: gradient-boosted trees on architecture features, the measured costs
and the proxy score, fitted on the candidates trained so far. The search uses it to choose
which of the untrained candidates deserve training.
"""
from __future__ import annotations

import math

import numpy as np

from .space import Candidate

MIN_SAMPLES = 6  # fewer trained candidates: rank by the proxy alone


def feature_row(c: Candidate, record: dict) -> list[float]:
    m = record["measure"]
    proxy = record.get("proxy")
    proxy = proxy if proxy is not None and math.isfinite(proxy) else -1.0
    return [*c.features(), math.log1p(m["macs"]), math.log1p(m["weights"]),
            math.log1p(m["arena"]), math.log1p(m["params"]), proxy]


class Predictor:
    def __init__(self, seed: int = 0):
        self.seed = seed
        self.model = None
        self.n = 0

    def fit(self, rows: list[list[float]], acc: list[float]) -> None:
        if len(rows) < MIN_SAMPLES:
            self.model, self.n = None, len(rows)
            return
        self.model = _regressor(self.seed, len(rows)).fit(np.asarray(rows), np.asarray(acc))
        self.n = len(rows)

    @property
    def ready(self) -> bool:
        return self.model is not None

    def predict(self, rows: list[list[float]]) -> list[float]:
        if self.model is None or not rows:
            return [float("nan")] * len(rows)
        return [float(v) for v in self.model.predict(np.asarray(rows))]


def _regressor(seed: int, n: int):
    from sklearn.ensemble import HistGradientBoostingRegressor
    return HistGradientBoostingRegressor(max_iter=150, learning_rate=0.08, max_depth=3,
                                         min_samples_leaf=max(2, min(8, n // 6)),
                                         l2_regularization=0.1, random_state=seed)


MIN_PAIRS = 5  # fewer: a rank correlation says nothing, reported as None


def spearman(a: list[float], b: list[float]) -> float | None:
    """Spearman's rank correlation, None with fewer than MIN_PAIRS pairs or a constant side."""
    if len(a) < MIN_PAIRS:
        return None
    from scipy.stats import spearmanr
    a_arr, b_arr = np.asarray(a, float), np.asarray(b, float)
    ok = np.isfinite(a_arr) & np.isfinite(b_arr)
    if ok.sum() < MIN_PAIRS or np.ptp(a_arr[ok]) == 0 or np.ptp(b_arr[ok]) == 0:
        return None
    return float(spearmanr(a_arr[ok], b_arr[ok]).statistic)


def cross_validated_rank(rows: list[list[float]], acc: list[float], seed: int = 0,
                         folds: int = 5) -> float | None:
    """Spearman between k-fold out-of-fold predictions and the real accuracies: how well the
    predictor ranks candidates it was not fitted on."""
    n = len(rows)
    if n < max(MIN_SAMPLES + 2, folds):
        return None
    order = np.random.default_rng(seed).permutation(n)
    x, y = np.asarray(rows), np.asarray(acc)
    pred = np.empty(n)
    for f in range(folds):
        test = order[f::folds]
        train = np.setdiff1d(order, test)
        pred[test] = _regressor(seed, len(train)).fit(x[train], y[train]).predict(x[test])
    return spearman(list(pred), list(y))
