"""The explorers in a real browser: JupyterLab on 127.0.0.1, headless Chromium through Playwright.

Opens 03_similarity_maps and 04_concept_tsne (copies, so the stored notebooks stay clean), runs all
cells, and checks that no cell errored, that the plotly figures rendered, and that changing an
explorer widget changes its output. Screenshots go to work/screenshots/ (and the test's tmp dir).
Skipped when there is no Chromium executable (Debian's `chromium`; set CHROMIUM to another one).
"""
from __future__ import annotations

import json
import os
import secrets
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHOTS = REPO / "work" / "screenshots"
CHROMIUM = os.environ.get("CHROMIUM") or shutil.which("chromium") or shutil.which("chromium-browser")
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
         "--disable-component-update", "--disable-sync", "--no-first-run"]

pytestmark = [pytest.mark.browser, pytest.mark.slow,
              pytest.mark.skipif(CHROMIUM is None, reason="no chromium executable (Debian package `chromium`)")]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def trained_runs():
    """The smoke-sized stvg and scl runs the notebooks train by themselves (shared with their nbval runs)."""
    from workbench import notebook as nb
    from workbench.prepare import prepare

    data = prepare()
    return [nb.smoke_run(p, data) for p in ("stvg", "scl")]


@pytest.fixture(scope="module")
def lab(trained_runs, tmp_path_factory):
    """A JupyterLab server on 127.0.0.1 (random free port, token) rooted at a copy of the notebooks."""
    root = tmp_path_factory.mktemp("lab")
    for name in ("03_similarity_maps", "04_concept_tsne"):
        shutil.copy(REPO / "notebooks" / f"{name}.ipynb", root / f"{name}.ipynb")
    cfg = root / ".config"
    (cfg / "labconfig").mkdir(parents=True)
    (cfg / "labconfig" / "page_config.json").write_text(json.dumps(         # no news toast, offline
        {"disabledExtensions": {"@jupyterlab/apputils-extension:announcements": True}}))
    tracker = root / ".settings" / "@jupyterlab" / "notebook-extension"
    tracker.mkdir(parents=True)                        # every cell in the DOM (no virtual scrolling)
    (tracker / "tracker.jupyterlab-settings").write_text(json.dumps({"windowingMode": "none"}))
    port, token = _free_port(), secrets.token_hex(16)
    env = {k: v for k, v in os.environ.items() if k != "WORKBENCH_INTERACTIVE"}
    env.update(JUPYTER_CONFIG_DIR=str(cfg), JUPYTER_RUNTIME_DIR=str(root / ".runtime"),
               JUPYTERLAB_SETTINGS_DIR=str(root / ".settings"), JUPYTERLAB_WORKSPACES_DIR=str(root / ".workspaces"),
               PYTHONPATH=os.pathsep.join([str(REPO), env.get("PYTHONPATH", "")]).rstrip(os.pathsep))
    log = open(root / "lab.log", "w")
    proc = subprocess.Popen([sys.executable, "-m", "jupyter", "lab", "--no-browser", "--ip=127.0.0.1",
                             f"--port={port}", f"--IdentityProvider.token={token}", f"--ServerApp.root_dir={root}",
                             "--LabApp.expose_app_in_browser=True", "--ServerApp.port_retries=0",
                             "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate",
                             *(["--allow-root"] if os.geteuid() == 0 else [])],
                            env=env, stdout=log, stderr=subprocess.STDOUT, cwd=root)
    base = f"http://127.0.0.1:{port}"
    try:
        for _ in range(600):
            try:
                urllib.request.urlopen(f"{base}/api/status?token={token}", timeout=1).read()
                break
            except OSError:
                if proc.poll() is not None:
                    raise RuntimeError(f"jupyter lab exited: {(root / 'lab.log').read_text()[-2000:]}")
                time.sleep(0.1)
        else:
            raise RuntimeError("jupyter lab did not answer in 60 s")
        yield base, token, root
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()


@pytest.fixture(scope="module")
def page(lab):
    import tempfile

    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw, tempfile.TemporaryDirectory() as profile:
        ctx = pw.chromium.launch_persistent_context(profile, executable_path=CHROMIUM, headless=True, args=FLAGS,
                                                    viewport={"width": 1440, "height": 1900})
        yield ctx.new_page()
        ctx.close()


# JS: the state of the current notebook panel's cells
CELLS = """() => {
  const nb = window.jupyterapp.shell.currentWidget;
  if (!nb || !nb.content || !nb.sessionContext || !nb.sessionContext.session) return null;
  const cells = nb.content.widgets.filter(c => c.model.type === 'code');
  const outs = cells.map(c => c.model.outputs.toJSON());
  return {kernel: nb.sessionContext.session.kernel ? nb.sessionContext.session.kernel.status : 'none',
          total: cells.length, executed: cells.filter(c => c.model.executionCount).length,
          running: document.querySelectorAll('.jp-InputPrompt').length ?
                   [...document.querySelectorAll('.jp-InputPrompt')].filter(e => e.textContent.includes('*')).length : 0,
          errors: outs.flat().filter(o => o.output_type === 'error').map(o => o.ename + ': ' + o.evalue)};
}"""


def _shot(page, locator, name: str, tmp_dir: Path) -> Path:
    SHOTS.mkdir(parents=True, exist_ok=True)
    path = SHOTS / f"{name}.png"
    (locator.screenshot if locator is not None else page.screenshot)(path=str(path))
    shutil.copy(path, tmp_dir / path.name)
    return path


def _run_notebook(page, base: str, token: str, name: str, timeout_s: float = 120) -> dict:
    """Open ``name`` in the running JupyterLab, run all its cells, wait until the kernel is idle."""
    if not page.url.startswith(base):
        page.goto(f"{base}/lab?token={token}")
        page.wait_for_function("() => window.jupyterapp && window.jupyterapp.started", timeout=60_000)
        page.evaluate("() => window.jupyterapp.started")
    path = f"{name}.ipynb"
    page.evaluate("(p) => window.jupyterapp.commands.execute('docmanager:open', {path: p})", path)
    page.wait_for_function("(p) => { const w = window.jupyterapp.shell.currentWidget; return w && w.context && "
                           "w.context.path === p && w.sessionContext && w.sessionContext.isReady && "
                           "w.sessionContext.session && w.sessionContext.session.kernel && "
                           "w.sessionContext.session.kernel.status === 'idle'; }", arg=path, timeout=60_000)
    page.evaluate("() => window.jupyterapp.commands.execute('notebook:run-all-cells')")
    t0 = time.time()
    while time.time() - t0 < timeout_s:
        st = page.evaluate(CELLS)
        if st and st["kernel"] == "idle" and st["running"] == 0 and (st["executed"] == st["total"] or st["errors"]):
            return st
        time.sleep(0.25)
    raise AssertionError(f"{name}: cells still running after {timeout_s} s: {page.evaluate(CELLS)}")


PANEL = ".jp-NotebookPanel:not(.lm-mod-hidden)"      # the notebook in front (others stay in the DOM, hidden)


def _explorer(page):
    """The explorer's widget box (the last ipywidgets view of the notebook in front)."""
    return page.locator(f"{PANEL} .jp-OutputArea-output .widget-vbox").last


def test_explorers_run_and_react_in_jupyterlab(page, lab, tmp_path):
    try:
        _check_explorers(page, lab, tmp_path)
    except Exception:
        _shot(page, None, "failure", tmp_path)          # what the browser showed when it failed
        raise


def _check_explorers(page, lab, tmp_path):
    base, token, _ = lab

    # --- 03: similarity maps --------------------------------------------------------------------
    st = _run_notebook(page, base, token, "03_similarity_maps")
    assert st["errors"] == [] and st["executed"] == st["total"], st
    plots = page.locator(f"{PANEL} .jp-OutputArea .js-plotly-plot:has(.main-svg)")
    plots.first.wait_for(timeout=30_000)
    assert plots.count() >= 2                          # the figure and the explorer's
    box = _explorer(page)
    box.scroll_into_view_if_needed()
    fig = box.locator(".js-plotly-plot").first
    fig.wait_for(timeout=30_000)
    _shot(page, plots.first, "03_similarity_maps_figure", tmp_path)
    _shot(page, box, "03_similarity_maps_explorer", tmp_path)
    title = box.locator(".gtitle").first.text_content()
    seg = box.locator(".widget-dropdown select").first
    seg.select_option(index=1)                         # the second segment
    page.wait_for_function("([el, t]) => { const g = el.querySelector('.gtitle'); return g && g.textContent !== t; }",
                           arg=[box.element_handle(), title], timeout=30_000)
    assert box.locator(".gtitle").first.text_content() != title
    _shot(page, box, "03_similarity_maps_explorer_segment2", tmp_path)

    # --- 04: concept t-SNE ----------------------------------------------------------------------
    st = _run_notebook(page, base, token, "04_concept_tsne")
    assert st["errors"] == [] and st["executed"] == st["total"], st
    plots = page.locator(f"{PANEL} .jp-OutputArea .js-plotly-plot:has(.main-svg)")
    plots.first.wait_for(timeout=30_000)
    assert plots.count() >= 2
    _shot(page, plots.first, "04_concept_tsne_figure", tmp_path)
    box = _explorer(page)
    box.scroll_into_view_if_needed()
    box.locator(".js-plotly-plot").first.wait_for(timeout=30_000)
    _shot(page, box, "04_concept_tsne_explorer", tmp_path)
    table = box.locator("table").first.inner_text()
    pick = box.locator(".widget-dropdown select").first
    pick.select_option(index=1)
    page.wait_for_function("([el, t]) => { const g = el.querySelector('table'); return g && g.innerText !== t; }",
                           arg=[box.element_handle(), table], timeout=30_000)
    _shot(page, box, "04_concept_tsne_explorer_class2", tmp_path)
    _shot(page, None, "04_concept_tsne_page", tmp_path)
