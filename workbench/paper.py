"""The paper's reported numbers (SPEC.md), keyed by preset name, for comparison tables and figures.

Only rows the paper reports are here; a preset without a row is compared with nothing.
"""
from __future__ import annotations

from .evaluate import METRICS  # noqa: F401  (the metric keys the tables use)

SPLITS = ("validation", "testing")


def _yc2(qma_v, qma_t, qmi_v, qmi_t, bma_v, bma_t, bmi_v, bmi_t) -> dict[str, dict[str, float]]:
    # SPEC order: query macro val/test, micro val/test | box macro val/test, micro val/test
    return {"validation": dict(query_macro=qma_v, query_micro=qmi_v, box_macro=bma_v, box_micro=bmi_v),
            "testing": dict(query_macro=qma_t, query_micro=qmi_t, box_macro=bma_t, box_micro=bmi_t)}


YOUCOOK2 = {
    "stvg": _yc2(41.36, 43.40, 48.74, 48.98, 39.90, 41.63, 46.80, 47.02),
    "scl": _yc2(43.46, 44.61, 50.45, 50.61, 41.94, 42.80, 48.46, 48.60),
    "random": _yc2(11.15, 10.94, 12.96, 12.79, 10.36, 10.67, 12.19, 12.26),
    "upper-bound": _yc2(65.55, 65.72, 70.32, 70.24, 62.42, 64.41, 68.56, 68.74),
}

# ActivityNet-Entities val (query macro, micro; box macro, micro); STVG* retrained.
ACTIVITYNET = {
    "stvg": {"validation": dict(query_macro=23.01, query_micro=29.09, box_macro=21.12, box_micro=25.81)},
    "scl": {"validation": dict(query_macro=25.90, query_micro=35.44, box_macro=23.82, box_micro=31.61)},
    "upper-bound": {"validation": dict(query_macro=50.94, query_micro=64.81, box_macro=49.05, box_micro=63.41)},
    "random": {"validation": dict(query_macro=3.29, query_micro=4.81, box_macro=3.16, box_micro=4.03)},
}

# RoboWatch query micro accuracy (trained on YouCook2-BB).
ROBOWATCH = {"stvg": 32.05, "scl": 33.16, "random": 8.03}

TABLES = {"youcook2-bb": YOUCOOK2, "activitynet-entities": ACTIVITYNET}


def paper_numbers(preset: str, dataset: str = "youcook2-bb") -> dict[str, dict[str, float]]:
    """{split: {metric: value}} the paper reports for ``preset`` on ``dataset`` ({} when none)."""
    return TABLES.get(dataset, {}).get(preset, {})
