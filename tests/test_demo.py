"""``sidlite demo`` and the pages a reader opens: the gallery and the rendered book.

The demo runs once in ``--quick`` mode (the same code on small inputs); its outputs are checked for what
each application promises. The browser tests open the gallery and a rendered chapter in a real headless
Chromium and check that every image decodes; they are skipped, with the reason, where no Chromium is
installed (``apt-get install chromium`` on Debian).
"""
from __future__ import annotations

import html
import importlib.util
import json
import re
import shutil
import subprocess
from pathlib import Path

import nbformat
import pytest
import torch

import sidlite
from sidlite.cli import main as cli_main
from sidlite.commands import demo as demo_command

ROOT = Path(__file__).resolve().parents[1]
BROWSERS = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
BROWSER = next((shutil.which(name) for name in BROWSERS if shutil.which(name)), None)
needs_browser = pytest.mark.skipif(BROWSER is None, reason="no Chromium installed (Debian: apt-get install chromium); "
                                                           "the gallery and book pages are checked in a real browser")


@pytest.fixture(scope="module")
def gallery(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("demo")
    cli_main(["demo", "--quick", "--output", str(folder), "--overwrite"])
    return folder


def _sources(page: Path) -> list[str]:
    return re.findall(r'<img src="([^"]+)"', page.read_text(encoding="utf-8"))


def test_gallery_lists_every_written_image_once(gallery):
    sources = _sources(gallery / "index.html")
    written = sorted(p.name for p in gallery.glob("*.png"))
    assert sorted(html.unescape(s) for s in sources) == written
    titles = re.findall(r"<h2>([^<]+)", (gallery / "index.html").read_text(encoding="utf-8"))
    expected = ["Unconditional generation", "Retargeting", "Symmetric", "Tileable", "Inpainting", "Outpainting",
                "Editing", "Super-resolution", "Structural analogy", "Guided style"]
    assert all(any(t.startswith(e) for t in titles) for e in expected), titles


def test_demo_outputs_keep_their_promises(gallery):
    load = lambda name: sidlite.load_image(gallery / name)  # noqa: E731
    symmetric = load("symmetric.png")
    assert torch.equal(symmetric, symmetric.flip(-1))
    inpainted, holed = load("inpaint.png"), load("inpaint_hole.png")
    known = ~(holed == 1).all(0)
    assert torch.equal(inpainted[:, known], load("inpaint_input.png")[:, known])
    wall, outpainted = load("outpaint_input.png"), load("outpaint.png")
    left = (outpainted.shape[2] - wall.shape[2]) // 2
    assert torch.equal(outpainted[:, :, left:left + wall.shape[2]], wall)
    assert load("megapixel_256.png").shape == (3, 256, 256)
    small, big = load("upscale_input.png"), load("upscale_4x.png")
    assert big.shape[1:] == (4 * small.shape[1], 4 * small.shape[2])
    tile = load("tileable.png")
    assert sidlite.seam_error(tile) < sidlite.seam_error(load("tileable_input_2x2.png")[:, :tile.shape[1], :tile.shape[2]])


def test_demo_defaults_are_lecture_size():
    import argparse

    parser = argparse.ArgumentParser()
    demo_command.register(parser.add_subparsers())
    args = parser.parse_args(["demo"])
    assert args.max_side >= 256 and not args.quick
    letter = demo_command.letter_image("S", 196)
    assert letter.shape == (3, 196, 196) and (letter < 0).float().mean() > 0.1   # a bold letter, not a hairline
    mosaic = demo_command.mosaic_image(196)
    assert torch.equal(mosaic, demo_command.mosaic_image(196)) and mosaic.std() > 0.2


def test_demo_refuses_to_overwrite_without_asking(tmp_path):
    (tmp_path / "mine.txt").write_text("keep")
    assert cli_main(["demo", "--quick", "--output", str(tmp_path)]) == 2
    assert (tmp_path / "mine.txt").read_text() == "keep"


_CHECKER = """<!doctype html><meta charset="utf-8"><body><iframe id="f" style="width:1400px;height:900px"></iframe>
<pre id="out">pending</pre><script>
const pages = PAGES, results = [];
const frame = document.getElementById('f');
frame.addEventListener('load', () => {
  if (frame.contentWindow.location.href === 'about:blank') return;
  const d = frame.contentDocument;  // the load event comes after every image has loaded or failed
  const images = [...d.images];
  results.push({page: pages[results.length], title: d.title, total: images.length,
                decoded: images.filter(i => i.complete && i.naturalWidth > 0).length,
                sizes: images.map(i => [i.naturalWidth, i.naturalHeight])});
  if (results.length === pages.length) document.getElementById('out').textContent = 'RESULT ' + JSON.stringify(results);
  else frame.src = pages[results.length];
});
frame.src = pages[0];
</script>"""


def _open_in_browser(pages: list[Path], tmp_path: Path) -> list[dict]:
    """Load each page in headless Chromium (one process) and report its images as the browser decoded them."""
    checker = tmp_path / "checker.html"
    checker.write_text(_CHECKER.replace("PAGES", json.dumps([p.resolve().as_uri() for p in pages])), encoding="utf-8")
    command = [BROWSER, "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
               "--disable-component-update", "--disable-sync", "--no-first-run", f"--user-data-dir={tmp_path / 'profile'}",
               "--allow-file-access-from-files", f"--virtual-time-budget={5000 * len(pages)}", "--dump-dom",
               checker.as_uri()]
    dom = subprocess.run(command, capture_output=True, text=True, timeout=120 + 10 * len(pages)).stdout
    found = re.search(r"RESULT (\[.*\])", dom)
    assert found, f"the browser did not finish loading the pages: {dom[-500:]!r}"
    return json.loads(html.unescape(found.group(1)))


@needs_browser
def test_gallery_opens_in_a_browser_with_every_image(gallery, tmp_path):
    [report] = _open_in_browser([gallery / "index.html"], tmp_path)
    assert report["title"] == "sidlite demo"
    assert report["total"] == len(_sources(gallery / "index.html")) > 10
    assert report["decoded"] == report["total"], report
    from PIL import Image

    for name, (width, height) in zip(_sources(gallery / "index.html"), report["sizes"]):
        assert (width, height) == Image.open(gallery / name).size, name


def _render_script():
    spec = importlib.util.spec_from_file_location("render_book", ROOT / "scripts" / "render_book.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@needs_browser
def test_rendered_book_pages_show_their_figures(tmp_path, monkeypatch):
    render = _render_script()
    for key in [*render.OFFLINE, "MPLBACKEND", "SIDLITE_FAST"]:
        monkeypatch.setenv(key, "unchanged")
    book = tmp_path / "book"
    book.mkdir()
    cells = [nbformat.v4.new_markdown_cell("# 00 · A chapter with a figure\n\n$$x_t = \\alpha_t y + \\sigma_t \\varepsilon$$"),
             nbformat.v4.new_code_cell("import matplotlib.pyplot as plt\nplt.plot([0, 1], [1, 0]); plt.show()")]
    nbformat.write(nbformat.v4.new_notebook(cells=cells), book / "00-figure.ipynb")
    assert render.main(["--book", str(book), "--output", str(tmp_path / "html"), "--fast"]) == 0
    pages = [tmp_path / "html" / "00-figure.html"]
    built = ROOT / "_build" / "html"        # the real book, when `make book` has been run here
    pages += sorted(built.glob("[0-9][0-9]-*.html"))
    for report in _open_in_browser(pages, tmp_path):
        assert report["total"] >= 1 and report["decoded"] == report["total"], report
        assert all(w > 0 and h > 0 for w, h in report["sizes"]), report
