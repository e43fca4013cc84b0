"""One configuration object: the single source of truth for the CLI, notebook parameters and
checkpoints. A preset is a named set of overrides of the defaults; ``--set key=value`` and
notebook parameters apply on top. Unknown keys are errors, never warnings.
"""
from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field, fields
from typing import Any

from .io import DataError


@dataclass
class Config:
    # --- data -----------------------------------------------------------------------------
    data: str = ""                     # dataset directory (simulator output or real data)
    text_features: str = ""            # text-feature cache; "" = <data>/text_features.h5
    num_frames: int = 5                # T: frames sampled per training segment
    num_proposals: int = 20            # N: proposals per frame (first N of each frame)
    # --- model ----------------------------------------------------------------------------
    model: str = "scl"                 # registry name in workbench.model.MODELS ("scl": STVG/SCL presets,
                                       # "fusion-ensemble": the two-baseline ensemble; "dvsa", "vog", "nafae")
    embed_dim: int = 512               # d: common embedding dimension
    attn_heads: int = 8                # heads of the visual self-attention
    visual_attention: str = "frame"    # "frame": self-attention over the proposals of one frame
                                       # (STVG's span, chosen so inference can run frame by frame);
                                       # "none": linear + tanh only (Extended DVSA)
    temporal: str = "attention"        # "attention": STVG temporal weights (softmax over t);
                                       # "mean": uniform 1/T (Extended DVSA)
    query: str = "glove"               # text of the main MIL branch: "glove" E_f(o) | "context" E_c(o)
                                       # | "fusion" (see `fusion`) | "selector" U(o)
    context_encoder: str = "lm"        # contextual features: "lm" (cached BERT/MiniLM) | "glove-bilstm"
    fusion: str = "none"               # none | ensemble | add | mul | concat  (Table 3 fusion rows)
    ensemble_weight: float = -1.0      # ensemble: weight of the E_f branch; -1 = pick the best on val
    lstm_hidden: int = 256             # GloVe+biLSTM encoder: hidden size per direction (c(o), c(S) are 2x)
    # --- baselines of Table 1 (models dvsa, vog, nafae) -------------------------------------
    dropout: float = 0.0               # dropout of their region / word embeddings (public code: 0.2 / 0.1)
    object_query: str = "label"        # dvsa/vog object embedding: "label" lookup table of class ids (public
                                       # code); "glove": linear map of w(o) (Table 4: GloVe, open vocabulary)
    margin: float = 0.1                # ranking margin (DVSA/VOG 0.1; NAFAE's Delta 1.0)
    loss_factor: float = 0.9           # VOG: weight of the frame-weighted ranking term vs -log(2w)
    vis_lambda: float = 1.0            # NAFAE: weight of the visual-consistency loss
    region_input: str = "div100"       # NAFAE region input: "div100" r / 100 (public code, for its detector's
                                       # fc7 scale); "l2" r / |r| (scale-free, see docs/DECISIONS.md)
    # --- SCL (CAOS + CMAKT) ---------------------------------------------------------------
    context_branch: bool = False       # train the contextual branch U(o) with L^c_MIL
    selector: bool = True              # U(o) = (E_c(o)+E_c(S)) * (g(E_f(o))+1); False: U(o) = E_c(o)
    concept_extraction: bool = True    # D = E_c(o) - E_c(S); False: D = E_c(o)
    caos_form: str = "contrast"        # "contrast": InfoNCE of d+ against d- (numerically safe, the
                                       # default: the literal ratio explodes, |d-| ~ 1e-5 at init,
                                       # see docs/DECISIONS.md); "ratio": the paper's literal -d+/d-
    caos_temperature: float = 0.1      # temperature of the "contrast" form
    spatial_transfer: bool = True      # L_STran
    temporal_transfer: bool = True     # L_TTran
    tau: float = 1.0                   # softening temperature of the transfer (Eq. 9-10)
    eta: float = 0.2                   # scale of l(x) = log(1 + exp(x / eta))
    lambda_clust: float = 0.0          # λ1 weight of L_clust (0 = CAOS off)
    lambda_transfer: float = 0.0       # λ2 weight of L_STran + L_TTran (0 = CMAKT off)
    infer: str = "f"                   # inference scores: "f" E_f only | "u" U only | "both" sum
    # --- optimisation ---------------------------------------------------------------------
    epochs: int = 10                   # training epochs
    batch_size: int = 48               # segments per step
    lr: float = 1e-4                   # Adam learning rate
    weight_decay: float = 1e-4         # Adam weight decay
    seed: int = 0                      # RNG seed (data order, frame sampling, negatives, init)
    dtype: str = "auto"                # matmul dtype: "auto" (bf16 where faster: CUDA with bf16, or
                                       # a CPU where a cached micro-benchmark says so) | "bf16" | "fp32"
    device: str = "auto"               # "auto" (cuda when present) | "cpu" | "cuda" | "cuda:N"
    threads: int = 0                   # torch CPU threads; 0 = torch's default
    resident_features: bool = False    # hold the training store's features on the device (a GPU with
                                       # room for them): same batches, no disk reads during training
    max_train_segments: int = 0        # use only the first N training segments (0 = all)
    max_eval_segments: int = 0         # evaluate only the first N val/test segments (0 = all)
    select_metric: str = "box_micro"   # validation metric that selects the checkpoint
    eval_rule: str = "auto"            # evaluation rule (evaluate.RULES) of validation/testing metrics;
                                       # "auto" = the dataset format's default (stvg for YouCook2-BB)

    def replace(self, **overrides: Any) -> "Config":
        return apply_overrides(self, overrides)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any], where: str = "config") -> "Config":
        return apply_overrides(cls(), d, where=where)


# Hyper-parameters from SPEC.md. Learning rate: the paper says 1e-4 for YouCook2-BB while the
# public STVG code trains with 8e-4. We keep the paper's 1e-4 as the default because every
# paper number we compare with was reported under it; `--set lr=8e-4` reproduces the code.
_SCL = dict(context_branch=True, lambda_clust=0.4, lambda_transfer=0.2)

PRESETS: dict[str, dict[str, Any]] = {
    "stvg": {},
    "stvg-bert": dict(query="context"),
    "stvg-glove-bilstm": dict(query="context", context_encoder="glove-bilstm"),
    "fusion-ensemble": dict(model="fusion-ensemble", query="fusion", fusion="ensemble"),
    "fusion-add": dict(query="fusion", fusion="add"),
    "fusion-mul": dict(query="fusion", fusion="mul"),
    "fusion-concat": dict(query="fusion", fusion="concat"),
    "fusion-selector": dict(query="selector"),
    "scl": dict(_SCL),
    "scl-no-caos": dict(_SCL, lambda_clust=0.0),
    "scl-no-cmakt": dict(_SCL, lambda_transfer=0.0),
    "scl-no-spatial-transfer": dict(_SCL, spatial_transfer=False),
    "scl-no-temporal-transfer": dict(_SCL, temporal_transfer=False),
    "scl-no-selector": dict(_SCL, selector=False),
    "scl-no-concept-extraction": dict(_SCL, concept_extraction=False),
    "scl-glove-bilstm": dict(_SCL, context_encoder="glove-bilstm"),
    "scl-infer-u": dict(_SCL, infer="u"),
    "scl-infer-both": dict(_SCL, infer="both"),
    # STVG without its visual self-attention and temporal attention (what `dvsa` meant before the
    # public Extended DVSA was implemented): kept as an ablation of STVG.
    "stvg-no-attention": dict(visual_attention="none", temporal="mean"),
    # Table 1 baselines, architecture and loss hyper-parameters of their public code
    # (optimiser: the workbench's Adam; see docs/DECISIONS.md).
    "dvsa": dict(model="dvsa", embed_dim=128, dropout=0.2, margin=0.1),
    "vog": dict(model="vog", embed_dim=128, dropout=0.2, margin=0.1, attn_heads=4, loss_factor=0.9),
    # region_input="l2": the public code's r / 100 leaves features of norm ~1 (ours) at ~0.01 and NAFAE
    # stays at chance; l2 is scale-free (docs/DECISIONS.md); --set region_input=div100 is the code's form.
    "nafae": dict(model="nafae", embed_dim=512, dropout=0.1, margin=1.0, vis_lambda=1.0, batch_size=8,
                  weight_decay=1e-5, region_input="l2"),
}

_CHOICES = {
    "visual_attention": ("frame", "none"),
    "temporal": ("attention", "mean"),
    "query": ("glove", "context", "fusion", "selector"),
    "context_encoder": ("lm", "glove-bilstm"),
    "fusion": ("none", "ensemble", "add", "mul", "concat"),
    "caos_form": ("contrast", "ratio"),
    "infer": ("f", "u", "both"),
    "dtype": ("auto", "bf16", "fp32"),
    "object_query": ("label", "glove"),
    "region_input": ("div100", "l2"),
}


def _coerce(name: str, value: Any, typ: type, where: str) -> Any:
    if typ is bool:
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.lower() in ("1", "true", "yes", "on", "0", "false", "no", "off"):
            return value.lower() in ("1", "true", "yes", "on")
        if isinstance(value, int) and value in (0, 1):
            return bool(value)
        raise DataError(f"{where}: {name} expects a boolean, got {value!r}")
    try:
        if typ is int and isinstance(value, float) and not value.is_integer():
            raise ValueError
        return typ(value)
    except (TypeError, ValueError):
        raise DataError(f"{where}: {name} expects {typ.__name__}, got {value!r}") from None


def apply_overrides(cfg: Config, overrides: dict[str, Any], where: str = "overrides") -> Config:
    """Return a copy of ``cfg`` with ``overrides`` applied; unknown keys and bad values raise."""
    types = {f.name: type(f.default) for f in fields(Config)}
    unknown = sorted(set(overrides) - set(types))
    if unknown:
        raise DataError(f"{where}: unknown config key(s) {unknown}; known keys: {sorted(types)}")
    values = {k: _coerce(k, v, types[k], where) for k, v in overrides.items()}
    for k, v in values.items():
        if k in _CHOICES and v not in _CHOICES[k]:
            raise DataError(f"{where}: {k} must be one of {_CHOICES[k]}, got {v!r}")
    return dataclasses.replace(cfg, **values)


def preset(name: str, **overrides: Any) -> Config:
    """The config of a named preset, with ``overrides`` applied."""
    if name not in PRESETS:
        raise DataError(f"unknown preset {name!r}; presets: {sorted(PRESETS)}")
    return apply_overrides(apply_overrides(Config(), PRESETS[name], where=f"preset {name}"), overrides)


def parse_sets(items: list[str] | None) -> dict[str, str]:
    """Parse ``--set key=value`` strings into a dict (values are coerced by ``apply_overrides``)."""
    out: dict[str, str] = {}
    for item in items or []:
        if "=" not in item:
            raise DataError(f"--set {item!r}: expected key=value")
        k, v = item.split("=", 1)
        out[k.strip()] = v.strip()
    return out


def dumps(cfg: Config) -> str:
    return json.dumps(cfg.to_dict(), indent=2, sort_keys=True)
