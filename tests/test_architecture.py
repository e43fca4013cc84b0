"""Architecture invariants: no import cycle inside workbench/, a model added through the registry
alone trains and predicts, and every format is reachable through FORMATS."""
import ast
from pathlib import Path

import pytest
import torch

PKG = Path(__file__).resolve().parents[1] / "workbench"


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(PKG.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def import_graph() -> dict[str, set[str]]:
    """workbench module -> the workbench modules it imports anywhere (module level or inside functions).

    ``from X import name`` counts as an import of X.name when that is a module, else of X."""
    files = {_module_name(p): p for p in PKG.rglob("*.py")}
    graph: dict[str, set[str]] = {m: set() for m in files}
    for mod, path in files.items():
        package = mod if path.name == "__init__.py" else mod.rpartition(".")[0]
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            targets = []
            if isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    anchor = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                    base = ".".join(anchor + ([base] if base else []))
                targets = [f"{base}.{a.name}" if f"{base}.{a.name}" in files else base for a in node.names]
            graph[mod] |= {t for t in targets if t in files and t != mod}
    return graph


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(m: str):
        state[m] = 1
        stack.append(m)
        for n in sorted(graph[m]):
            if state.get(n) == 1:
                return stack[stack.index(n):] + [n]
            if n not in state:
                found = visit(n)
                if found:
                    return found
        stack.pop()
        state[m] = 2
        return None

    for m in sorted(graph):
        if m not in state:
            found = visit(m)
            if found:
                return found
    return None


# The package's layers, lowest first (docs/ARCHITECTURE.md): a module imports only from its own layer or below,
# counting imports inside functions. A module's layer is that of the longest entry naming it ("datasets.releases"
# builds feature stores as it imports a release, so it sits above features/ while the readers sit below).
LAYERS = (
    ("workbench", "errors", "records", "io", "paths", "boxes", "device", "precision", "allocator"),
    ("text",),
    ("datasets",),
    ("features",),
    ("datasets.releases",),
    ("config", "evaluate", "model", "baselines"),
    ("engine", "workspace", "run", "check"),
    ("sim",),
    ("train", "predict", "prepare", "bench"),
    ("report",),
    ("notebook", "experiments"),
    ("__main__",),
)
# Imports allowed inside a function: optional or heavy dependencies a light command should not pay for.
# (torch, h5py, pandas and tqdm count as heavy: `evaluate`, `--help` and other light commands must not load them.)
LAZY_OK = {"papermill", "nbformat", "nbclient", "submitit", "playwright", "transformers", "plotly", "kaleido",
           "sklearn", "ipywidgets", "IPython", "matplotlib", "tensorboard", "psutil", "sentence_transformers",
           "huggingface_hub", "torch", "h5py", "pandas", "tqdm"}


def layer_of(module: str) -> int:
    parts = module.split(".")[1:] or ["workbench"]
    for n in range(len(parts), 0, -1):
        key = ".".join(parts[:n])
        for i, names in enumerate(LAYERS):
            if key in names:
                return i
    raise AssertionError(f"{module}: in no layer of LAYERS (add it to tests/test_architecture.py and ARCHITECTURE.md)")


def upward_imports(graph: dict[str, set[str]]) -> list[str]:
    return sorted(f"{a} -> {b}" for a, deps in graph.items() for b in deps if layer_of(b) > layer_of(a))


def test_no_module_imports_from_a_layer_above_it():
    assert upward_imports({"workbench.sim.v2": {"workbench.text.glove"}}) == []
    assert upward_imports({"workbench.features.batches": {"workbench.sim.oracles"}}) == \
        ["workbench.features.batches -> workbench.sim.oracles"]
    assert layer_of("workbench.datasets.releases.ci") > layer_of("workbench.features.store") > layer_of("workbench.datasets.yc2")
    assert upward_imports(import_graph()) == []


def function_level_imports() -> list[str]:
    """Imports inside functions that are not of an optional heavy dependency (LAZY_OK) with a comment."""
    found = []
    for path in PKG.rglob("*.py"):
        lines = path.read_text().splitlines()
        for fn in ast.walk(ast.parse("\n".join(lines), str(path))):
            if not isinstance(fn, (ast.FunctionDef, ast.AsyncFunctionDef)):
                continue
            for node in ast.walk(fn):
                if isinstance(node, ast.Import):
                    roots = {a.name.split(".")[0] for a in node.names}
                elif isinstance(node, ast.ImportFrom):
                    roots = {"." if node.level else (node.module or "").split(".")[0]}
                else:
                    continue
                said_why = "#" in lines[node.lineno - 1] or lines[node.lineno - 2].strip().startswith("#")
                if not (roots <= LAZY_OK and said_why):
                    found.append(f"{path.relative_to(PKG.parent)}:{node.lineno} {ast.unparse(node)}")
    return sorted(set(found))


def test_imports_inside_functions_only_for_heavy_optional_dependencies():
    assert function_level_imports() == []


def test_cycle_finder_finds_a_cycle():
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set()}) is None


def test_no_import_cycle_in_workbench():
    graph = import_graph()
    assert "workbench.datasets.yc2" in graph["workbench.features.store"] or "workbench.datasets" in graph["workbench.features.store"]
    assert find_cycle(graph) is None, " -> ".join(find_cycle(graph))


def test_public_api_resolves():
    import workbench

    for name in workbench.__all__:
        assert getattr(workbench, name) is not None, name


def test_a_toy_model_through_the_registry_alone(smoke_data, tmp_path, monkeypatch):
    """A model registered in MODELS (and nothing else) trains, is selected on validation, and predicts."""
    from conftest import TINY
    from workbench.model import MODELS, GroundingModel
    from workbench.predict import load_run, predict_boxes
    from workbench.train import train
    from workbench.config import Config

    class Toy(GroundingModel):
        """Scores a proposal by <W x_region, w(o)>: the smallest model the protocol admits."""

        def __init__(self, cfg, dims):
            super().__init__()
            self.cfg = cfg
            self.proj = torch.nn.Linear(dims["visual"], dims["glove"])

        @staticmethod
        def loss_weights(cfg):
            return {"rank": 1.0}

        def ground(self, batch, chunk_frames=64):
            v = self.proj(batch["regions"].float())                              # (B, T, N, Dw)
            return torch.einsum("bkd,btnd->bktn", batch["obj_glove"].float(), v)

        def temporal_weights(self, batch, chunk_frames=64):
            m = batch["frame_mask"].float()[:, None, :].expand(-1, batch["obj_glove"].shape[1], -1)
            return m / m.sum(-1, keepdim=True)

        def losses(self, batch, neg):
            s = self.ground(batch).amax(-1).mean(-1)                            # (B, K)
            om = batch["obj_mask"].float()
            pos = (s * om).sum(1) / om.sum(1)
            other = (s[neg.sentence] * om[neg.sentence]).sum(1) / om[neg.sentence].sum(1)
            return {"rank": torch.relu(1.0 - pos + other).mean()}

    monkeypatch.setitem(MODELS, "toy", Toy)
    cfg = Config(data=str(smoke_data), model="toy", epochs=1, max_eval_segments=6,
                 **{k: v for k, v in TINY.items() if k != "lstm_hidden"})
    metrics = train(cfg, tmp_path / "toy", preset_name="toy")
    assert 0 <= metrics["validation"]["box_micro"] <= 100
    r = load_run(tmp_path / "toy")
    assert isinstance(r.model, Toy)
    boxes = predict_boxes(r, "validation")
    assert all(b.shape[-1] == 4 for b in boxes.values())


def test_unknown_model_is_named():
    from workbench.config import Config
    from workbench.io import DataError
    from workbench.model import build_model

    with pytest.raises(DataError, match="model 'nope' is not registered"):
        build_model(Config(model="nope"), dict(visual=4, glove=4, ctx=4))


def test_formats_detect(smoke_data, tmp_path):
    from workbench.datasets import FORMATS, detect
    from workbench.datasets.robowatch import ANNOTATION_NAME

    assert FORMATS[-1].name == "youcook2-bb" and detect(smoke_data).name == "youcook2-bb"
    (tmp_path / ANNOTATION_NAME).write_text("{}")
    assert detect(tmp_path).name == "robowatch"
    (tmp_path / "fc6_feat_100rois").mkdir()
    assert detect(tmp_path).name == "activitynet-entities"


def test_eval_rule_key(smoke_data):
    from workbench.config import Config
    from workbench.io import DataError
    from workbench.workspace import Workspace

    assert Workspace(Config(data=str(smoke_data))).rule == "stvg"
    assert Workspace(Config(data=str(smoke_data), eval_rule="codalab")).rule == "codalab"
    with pytest.raises(DataError, match="eval_rule"):
        Workspace(Config(data=str(smoke_data), eval_rule="bogus"))


def test_train_detects_the_dataset_format_once(smoke_data, tmp_path, monkeypatch):
    """`train` detects the format of --data once and passes it down (config defaults, fill_missing,
    require_ready, the Workspace, the text-cache check), instead of re-detecting from the path in each step."""
    from workbench.__main__ import main
    from workbench.datasets import FORMATS

    calls = []
    yc2 = type(FORMATS[-1])
    real = yc2.detect
    monkeypatch.setattr(yc2, "detect", lambda self, root: calls.append(str(root)) or real(self, root))
    assert main(["train", "--data", str(smoke_data), "--preset", "stvg", "--out", str(tmp_path / "run"),
                 "--set", "epochs=1", "--set", "max_eval_segments=4", "--set", "embed_dim=16",
                 "--set", "threads=1"]) == 0
    assert calls == [str(smoke_data)]
