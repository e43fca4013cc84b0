"""The SCL model (registry name "scl"): one module for the STVG baseline, the Table 3 variants and full SCL."""
from __future__ import annotations

import math

import torch
from torch import nn

from ..config import Config
from ..io import DataError
from .caos import caos_loss, extract_concept
from .cmakt import ContextSelector, negative_context, oracle_teacher, spatial_transfer_loss, temporal_transfer_loss
from .mil import build_temporal, mil_loss, normalize, pool_frames, similarity, temporal_logits, temporal_weights, video_sentence_score
from .base import GroundingModel
from .negatives import Negatives
from .text import GloveBiLSTM, TextEmbedding
from .visual import VisualEmbedding

# The text branches whose scores ``ground`` adds up under each cfg.infer (ground_parts computes only these).
INFER_PARTS = {"f": ("f",), "u": ("u",), "both": ("f", "u")}


def loss_weights(cfg: Config) -> dict[str, float]:
    """Weight of each loss term (Eq. 18); a term switched off is absent (and not computed).

    mil_f: MIL of the main query branch (E_f(o) for the STVG/SCL presets); mil_c: MIL of the
    contextual branch U(o) (SCL); clust: L_clust (λ1);
    stran, ttran: L_STran, L_TTran (λ2). L^c_MIL is on whenever cfg.context_branch.
    """
    w = {"mil_f": 1.0}
    if cfg.context_branch:
        w["mil_c"] = 1.0
    if cfg.context_branch:
        if cfg.lambda_clust > 0:
            w["clust"] = cfg.lambda_clust
        if cfg.lambda_transfer > 0 and cfg.spatial_transfer:
            w["stran"] = cfg.lambda_transfer
        # With uniform temporal weights ("mean") both branches' Q are equal: nothing to transfer.
        if cfg.lambda_transfer > 0 and cfg.temporal_transfer and cfg.temporal != "mean":
            w["ttran"] = cfg.lambda_transfer
    return w


def _check(cfg: Config) -> None:
    if cfg.fusion == "ensemble":
        raise DataError("config: fusion='ensemble' is the fusion-ensemble model: set model='fusion-ensemble' "
                        f"(got model={cfg.model!r})")
    if (cfg.query == "fusion") != (cfg.fusion != "none"):
        raise DataError(f"config: query={cfg.query!r} and fusion={cfg.fusion!r} disagree; "
                        "query='fusion' needs fusion in add|mul|concat|ensemble and vice versa")
    if cfg.context_branch and cfg.query != "glove":
        raise DataError(f"config: context_branch (SCL) expects query='glove', got {cfg.query!r}")
    if cfg.teacher == "oracle" and not (cfg.context_branch and cfg.lambda_transfer > 0):
        raise DataError(f"config: teacher='oracle' replaces the transfer's teacher: it needs an SCL preset with the "
                        f"transfer on (got context_branch={cfg.context_branch}, lambda_transfer={cfg.lambda_transfer})")
    uses_u = cfg.context_branch or cfg.query == "selector"
    if cfg.infer != "f" and not uses_u:
        raise DataError(f"config: infer={cfg.infer!r} needs U(o): set context_branch=true or query='selector'")


class SCL(GroundingModel):
    """Region-phrase grounding model of the STVG / SCL presets (Config.model = "scl").

    Design choices where SPEC leaves one: the E_f branch and the U branch share E_v and the
    temporal MLP (the transfer compares two texts' alignments with the same regions);
    gradients of the transfer and CAOS losses flow into both sides (no detach). With
    cfg.teacher = "oracle" the transfer's teacher side is the world's stated-state relevance
    (``cmakt.oracle_teacher``, no gradient), on cued mentions only; U still trains on L^c_MIL. The
    fusion-ensemble preset wraps two of these (model/ensemble.py).
    """

    loss_weights = staticmethod(loss_weights)

    def __init__(self, cfg: Config, dims: dict[str, int]):
        super().__init__()
        _check(cfg)
        self.cfg = cfg
        d = cfg.embed_dim
        self.uses_u = cfg.context_branch or cfg.query == "selector"
        needs_f = cfg.query != "context" or cfg.context_branch
        needs_c = cfg.query != "glove" or cfg.context_branch
        self.visual = VisualEmbedding(dims["visual"], d, cfg.attn_heads, cfg.visual_attention)
        self.temporal = build_temporal(cfg.temporal, d)
        self.ef = TextEmbedding(dims["glove"], d) if needs_f else None
        self.context, self.ec = None, None
        if needs_c:
            c_dim = dims["ctx"]
            if cfg.context_encoder == "glove-bilstm":
                self.context = GloveBiLSTM(dims["glove"], cfg.lstm_hidden)
                c_dim = self.context.out_dim
            self.ec = TextEmbedding(c_dim, d)
        self.selector = ContextSelector(d) if self.uses_u and cfg.selector else None
        # Concatenation fusion: [E_f(o) ; E_c(o)] mapped back to d by one linear layer.
        self.fuse = nn.Linear(2 * d, d) if cfg.fusion == "concat" else None
        # Learnable inverse temperature of the transfer's softmaxes (cfg.tau_learnable), log-parametrised.
        self.log_inv_tau = nn.Parameter(torch.tensor(math.log(1.0 / cfg.tau))) if cfg.tau_learnable else None

    # --- text side -------------------------------------------------------------------------
    def _texts(self, batch: dict) -> dict[str, torch.Tensor]:
        """Every text embedding this preset uses, (B, K, d) / (B, d), not normalised."""
        cfg, t = self.cfg, {}
        if self.ef is not None:
            t["ef"] = self.ef(batch["obj_glove"])
        if self.ec is not None:
            if self.context is not None:
                c_obj, c_sent = self.context(batch["tok_glove"], batch["tok_mask"], batch["obj_tok_span"])
            else:
                c_obj, c_sent = batch["obj_ctx"], batch["sent_ctx"]
            t["ec_o"], t["ec_s"] = self.ec(c_obj), self.ec(c_sent)
        if self.uses_u:
            t["u"] = self._selector(t["ec_o"] + t["ec_s"][:, None, :], t["ec_o"], t["ef"])
        q = cfg.query
        if q == "glove":
            t["main"] = t["ef"]
        elif q == "context":
            t["main"] = t["ec_o"]
        elif q == "selector":
            t["main"] = t["u"]
        elif cfg.fusion == "add":
            t["main"] = t["ef"] + t["ec_o"]
        elif cfg.fusion == "mul":
            t["main"] = t["ef"] * t["ec_o"]
        else:  # concat
            t["main"] = self.fuse(torch.cat([t["ef"], t["ec_o"]], -1)).float()
        return t

    def _selector(self, pair: torch.Tensor, ec_obj: torch.Tensor, ef: torch.Tensor) -> torch.Tensor:
        """U from a (E_c(o) + E_c(S)) pair; without the selector U = E_c(o) (``ec_obj``)."""
        return self.selector(pair, ef) if self.selector is not None else ec_obj

    # --- visual side -----------------------------------------------------------------------
    @staticmethod
    def _embed(visual: VisualEmbedding, regions: torch.Tensor, temporal: nn.Module | None = None):
        """Unit region embeddings (B, T, N, d) and the frame features (B, T, d) ``temporal`` reads."""
        v = visual(regions)  # (B, T, N, d)
        unit = normalize(v)
        return unit, pool_frames(temporal, v, unit)

    def transfer_tau(self):
        """The transfer's softening temperature: cfg.tau, or 1 / exp(log_inv_tau) with 1/tau kept in [1, 100]."""
        if self.log_inv_tau is None:
            return self.cfg.tau
        return torch.exp(-self.log_inv_tau.float().clamp(0.0, math.log(100.0)))

    def transfer_taus(self):
        """(spatial, temporal) temperatures: cfg.tau_spatial / cfg.tau_temporal where set (> 0), else transfer_tau()."""
        tau = self.transfer_tau()
        return self.cfg.tau_spatial or tau, self.cfg.tau_temporal or tau

    def _replay(self, key: str, fn):
        """cfg.shared_dropout in training: run ``fn`` with the global RNG where it was at the first call of
        ``key`` in this step (so its dropout mask is that call's), then continue the RNG where it was.
        Otherwise just ``fn()``."""
        if not (self.cfg.shared_dropout and self.training and self.temporal is not None):
            return fn()
        dev = next(self.parameters()).device
        cuda = dev.type == "cuda"
        get = (lambda: torch.cuda.get_rng_state(dev)) if cuda else torch.get_rng_state  # noqa: E731
        put = (lambda st: torch.cuda.set_rng_state(st, dev)) if cuda else torch.set_rng_state  # noqa: E731
        states = self._rng_states
        if key not in states:
            states[key] = get()
            return fn()
        now = get()
        put(states[key])
        try:
            return fn()
        finally:
            put(now)

    # --- training ----------------------------------------------------------------------------
    def losses(self, batch: dict, neg: Negatives, internals: dict | None = None) -> dict[str, torch.Tensor]:
        """Unweighted loss terms, the keys of ``loss_weights(cfg)``; combine as sum(w[k] * L[k]).

        ``internals``, when given, receives the tensors the diagnostics read (texts, M and frame
        logits of each branch, the extracted concepts)."""
        cfg, weights = self.cfg, loss_weights(self.cfg)
        om, fm = batch["obj_mask"], batch["frame_mask"]
        t = self._texts(batch)
        vis, frames = self._embed(self.visual, batch["regions"], self.temporal)

        self._rng_states = {}

        def branches(texts, masks, vis, frames, temporal, video_idx=None, shared=()):
            """M and frame logits of several texts (with their object masks) against one set of videos.

            Each text is scored on its own (the STVG temporal form pools the sentence's objects, so
            texts are not concatenated along K for it); M of all texts is one matmul. ``shared``: the
            indices of texts whose temporal call uses the step's shared dropout mask (cfg.shared_dropout)."""
            if video_idx is not None:
                vis, frames = vis[video_idx], frames[video_idx]
            cat = torch.cat(texts, 1)  # (B, len(texts) * K, d)
            K = texts[0].shape[1]
            logits = [self._replay("pos", lambda x=x, mk=mk: temporal_logits(temporal, frames, x, mk)) if i in shared
                      else temporal_logits(temporal, frames, x, mk) for i, (x, mk) in enumerate(zip(texts, masks))]
            return zip(similarity(cat, vis).split(K, 1), logits)

        def h(m, lg, obj_mask, frame_mask):
            return video_sentence_score(m, temporal_weights(lg, frame_mask), obj_mask)

        gathered: dict[int, tuple] = {}

        def negative_videos(vis, frames):
            """V' of every positive, (B, T, N, d) and (B, T, d): gathered once per visual embedding
            and shared by the branches that use it (SCL's E_f and U branches), forward and backward."""
            if id(vis) not in gathered:
                gathered[id(vis)] = (vis[neg.video], frames[neg.video])
            return gathered[id(vis)]

        def mil(text, vis, frames, temporal, extra=()):
            """L_MIL of one text branch: pairs (S, V), (S', V), (S, V') reuse the batch's embeddings."""
            masks = [om, om[neg.sentence], *[om] * len(extra)]
            shared = (0, *range(2, 2 + len(extra)))        # (S, V) of this text and of U-: the transfer's pairs
            (m, lg), (m_s, lg_s), *more = branches([text, text[neg.sentence], *extra], masks, vis, frames, temporal,
                                                   shared=shared)
            ((m_v, lg_v),) = branches([text], [om], *negative_videos(vis, frames), temporal)
            loss = mil_loss(h(m, lg, om, fm), h(m_s, lg_s, om[neg.sentence], fm),
                            h(m_v, lg_v, om, fm[neg.video]), cfg.eta)
            return loss, m, lg, more

        out = {}
        out["mil_f"], m_f, lg_f, _ = mil(normalize(t["main"]), vis, frames, self.temporal)
        keep = internals if internals is not None else {}
        keep.update(texts=t, m_f=m_f, lg_f=lg_f)
        if cfg.context_branch:
            extra = ()
            oracle = cfg.teacher == "oracle"
            if oracle and ("teacher_look" not in batch or "teacher_cued" not in batch):
                raise DataError("teacher='oracle' needs the world's truth in the batch (teacher_look, teacher_cued): "
                                "train on a world v2 dataset through workbench.train")
            if ("stran" in weights or "ttran" in weights) and not oracle:
                # U-: the unmatched sentence's (E_c(o_k'), E_c(S_k')) with o_k's own selector.
                pair = negative_context(t["ec_o"], t["ec_s"], om, neg.sentence)
                alone = negative_context(t["ec_o"], None, om, neg.sentence)
                extra = (normalize(self._selector(pair, alone, t["ef"])),)
            out["mil_c"], m_c, lg_c, more = mil(normalize(t["u"]), vis, frames, self.temporal, extra)
            keep.update(m_c=m_c, lg_c=lg_c)
            if more:
                keep.update(m_cneg=more[0][0], lg_cneg=more[0][1])
            tau_s, tau_t = self.transfer_taus()
            if oracle:   # the positive control: the world's stated-state relevance as M^c, Q^c (frozen)
                teach = oracle_teacher(batch["regions"], batch["teacher_look"], batch["teacher_cued"], om,
                                       neg.sentence)
                keep["teacher"] = teach
                t_m, t_lg, t_mn, t_lgn, t_om = (teach[k] for k in ("m_c", "lg_c", "m_cneg", "lg_cneg", "mask"))
            elif "stran" in weights or "ttran" in weights:
                t_m, t_lg, t_mn, t_lgn, t_om = m_c, lg_c, more[0][0], more[0][1], om
                if cfg.teacher_grad == "stop":   # the transfer moves E_f's side only
                    t_m, t_lg, t_mn, t_lgn = (x.detach() for x in (t_m, t_lg, t_mn, t_lgn))
            if "stran" in weights:
                out["stran"] = spatial_transfer_loss(m_f, t_m, t_mn, t_om, fm, tau_s, cfg.eta)
            if "ttran" in weights:
                out["ttran"] = temporal_transfer_loss(lg_f, t_lg, t_lgn, t_om, fm, tau_t, cfg.eta)
            concept = extract_concept(t["ec_o"], t["ec_s"], cfg.concept_extraction)
            keep["concept"] = concept
            if "clust" in weights:
                out["clust"] = caos_loss(t["ef"], concept, batch["obj_class"], om, cfg.caos_form,
                                         cfg.caos_temperature)
        return out

    # --- inference ---------------------------------------------------------------------------
    def ground_parts(self, batch: dict, chunk_frames: int = 64, names: tuple[str, ...] = ("f", "u")
                     ) -> dict[str, torch.Tensor]:
        """Proposal scores (B, K, T, N) of each text branch of ``names`` the model has, computed frame-chunked.

        "f": the main query (E_f(o) for stvg/scl); "u": U(o) (presets with U). Frames are
        independent under frame-span attention, so chunking over T changes nothing but memory.
        """
        t = self._texts(batch)
        texts = {"f": normalize(t["main"])}
        if self.uses_u and "u" in names:
            texts["u"] = texts["f"] if self.cfg.query == "selector" else normalize(t["u"])
        texts = {k: v for k, v in texts.items() if k in names}
        parts: dict[str, list] = {k: [] for k in texts}
        regions = batch["regions"]
        for t0 in range(0, regions.shape[1], chunk_frames):
            chunk = regions[:, t0:t0 + chunk_frames]
            vis = normalize(self.visual(chunk))  # (B, t, N, d) unit; no frame features: nothing reads them here
            for k, text in texts.items():
                parts[k].append(similarity(text, vis))
        return {k: torch.cat(v, 2) for k, v in parts.items()}

    def ground(self, batch: dict, chunk_frames: int = 64) -> torch.Tensor:
        """Proposal scores (B, K, T, N) under cfg.infer ("f" M^f, "u" M with U, "both" their sum)."""
        names = INFER_PARTS[self.cfg.infer]
        parts = self.ground_parts(batch, chunk_frames, names)   # only the scores it adds up
        scores = parts[names[0]]
        for k in names[1:]:
            scores = scores + parts[k]
        return scores

    def temporal_weights(self, batch: dict, chunk_frames: int = 64) -> torch.Tensor:
        """Q (B, K, T) of the main query branch (uniform over valid frames for temporal="mean")."""
        text = normalize(self._texts(batch)["main"])
        regions = batch["regions"]
        frames = torch.cat([self._embed(self.visual, regions[:, t0:t0 + chunk_frames], self.temporal)[1]
                            for t0 in range(0, regions.shape[1], chunk_frames)], 1)  # (B, T, d)
        logits = temporal_logits(self.temporal, frames, text, batch["obj_mask"])
        return temporal_weights(logits, batch["frame_mask"])

    def concepts(self, batch: dict) -> dict[str, torch.Tensor]:
        """E_f(o) and the extracted concept D(E_c(o), E_c(S)) (B, K, d) each, for the t-SNE notebook."""
        if self.ef is None or self.ec is None:
            raise DataError(f"concepts() needs both E_f and E_c; preset with query={self.cfg.query!r}, "
                            f"context_branch={self.cfg.context_branch} has only one")
        t = self._texts(batch)
        return {"ef": t["ef"], "d": extract_concept(t["ec_o"], t["ec_s"], self.cfg.concept_extraction)}


