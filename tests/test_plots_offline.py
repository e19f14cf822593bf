"""`dvc plots show` pages render without a network: the committed template holds the Vega
libraries, and every plot of a page filled from it renders (to SVG, by those libraries)."""

import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
TEMPLATE = ROOT / ".dvc" / "plots_offline.html"


def test_dvc_config_names_the_offline_template():
    config = (ROOT / ".dvc" / "config").read_text()
    assert re.search(r"html_template = plots_offline.html", config)
    page = TEMPLATE.read_text(encoding="utf8")
    assert page.count("{plot_divs}") == 1 and "{scripts}" not in page  # no CDN scripts can be added
    assert not re.search(r"<script[^>]+src=", page)
    for name in ("vega@5.20.2", "vega-lite@5.2.0", "vega-embed@6.18.2"):
        assert name.replace("@", "-") + ".tgz" in page  # each library with its license comment


def test_a_page_from_the_template_renders_every_plot_offline(tmp_path):
    node = shutil.which("node")
    if node is None:
        pytest.skip("no node to run the page's Vega libraries")
    from dvc_render import VegaRenderer, render_html

    points = [{"step": str(i), "loss": str(1.0 / (i + 1)), "rev": "workspace", "filename": "loss.csv", "field": "loss"}
              for i in range(6)]
    renderers = [VegaRenderer(points, f"data/{stage}/loss.csv", x="step", y="loss", template="linear")
                 for stage in ("train_base", "train_depth")]
    page = render_html(renderers, tmp_path / "index.html", TEMPLATE)
    assert "cdn.jsdelivr" not in Path(page).read_text(encoding="utf8")
    out = subprocess.run([node, str(ROOT / "tests" / "plots_render_check.js"), str(page)],
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    rendered = json.loads(out.stdout)
    assert len(rendered) == 2 and all(r["paths"] > 10 for r in rendered)  # axes, ticks and the line
