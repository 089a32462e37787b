"""The report: built from the tiny run with `snakemake --report`, opened in headless Chromium."""

import json
import re
import time

import pytest

from chromium import Browser, find_browser
from conftest import run_snakemake

pytestmark = pytest.mark.e2e

REQUIRED_CATEGORIES = {"Summary", "Data", "Predictors", "Networks", "Search", "Pareto"}

# Every image result of the report decoded by the browser: name -> natural width (0: broken).
LOAD_IMAGES = """
(async () => {
  const out = {};
  for (const [path, r] of Object.entries(results)) {
    if (!r.mime_type.startsWith("image/")) continue;
    const img = new Image();
    const ok = await new Promise((resolve) => {
      img.onload = () => resolve(true);
      img.onerror = () => resolve(false);
      img.src = r.data_uri;
    });
    out[path] = ok ? img.naturalWidth : 0;
  }
  return out;
})()
"""

SHOW_PARETO = """
(async () => {
  const path = Object.keys(results).find((p) => p.endsWith("pareto.svg"));
  const entry = results[path];
  app.showCategory("Pareto");
  app.setView({content: "img", contentPath: entry.data_uri, resultPath: path});
  for (let i = 0; i < 100; i++) {
    const img = [...document.querySelectorAll("#app img")].find((el) => el.src === entry.data_uri);
    if (img && img.complete && img.naturalWidth > 0) return img.naturalWidth;
    await new Promise((r) => setTimeout(r, 100));
  }
  return 0;
})()
"""


@pytest.fixture(scope="module")
def report(tiny_run):
    workdir, _ = tiny_run
    path = workdir / "results" / "report.html"
    # The default profile already built it after the run (report-after-run); rebuild it the way
    # the README says, and time it.
    path.unlink(missing_ok=True)
    start = time.monotonic()
    run_snakemake(workdir, "--report", "results/report.html")
    return path, time.monotonic() - start


def test_the_run_leaves_a_report_without_a_second_command(tiny_run):
    workdir, first = tiny_run
    assert "report: results/report.html" in first.stdout + first.stderr
    assert (workdir / "results" / "report.html").stat().st_size > 100_000
    assert (workdir / "results" / "summary.md").read_text().startswith("# LENNA run summary")


def _embedded(text: str, name: str) -> dict:
    return json.loads(re.search(rf"var {name} = (\{{.*?\}});\n", text, re.S).group(1))


def test_report_lists_every_category_and_figure(report):
    path, seconds = report
    text = path.read_text()
    results, categories = _embedded(text, "results"), _embedded(text, "categories")
    assert REQUIRED_CATEGORIES <= set(categories), set(categories)
    listed = {c: [p for sub in categories[c].values() for p in sub] for c in categories}
    assert any(p.endswith("pareto/cpu/pareto.svg") for p in listed["Pareto"])
    assert any(p.endswith("pareto/cpu/pareto.html") for p in listed["Pareto"])
    assert any(p.endswith("mlp/predicted_vs_measured.svg") for p in listed["Predictors"])
    assert any(p.endswith("comparison.html") for p in listed["Predictors"])
    assert any(p.endswith("learning_curve.svg") for p in listed["Predictors"])
    assert sum(p.endswith("cells.svg") for p in listed["Search"]) == 4  # 2 predictors x 2 lambdas
    assert all(r["caption"].strip() for r in results.values())
    labels = results[next(p for p in listed["Search"] if p.endswith("cells.svg"))]["labels"]
    assert set(labels) == {"target", "model", "lambda", "seed", "figure"}
    print(f"report built in {seconds:.1f} s, {len(results)} entries")


@pytest.mark.skipif(find_browser() is None, reason="no chromium (./run-tests installs Debian's package)")
def test_report_opens_in_chromium_and_its_images_load(report):
    path, _ = report
    browser = Browser(find_browser())
    try:
        browser.open(path.as_uri())
        deadline = time.monotonic() + 30
        while not browser.evaluate("typeof app !== 'undefined' && document.querySelector('nav') !== null"):
            assert time.monotonic() < deadline, "the report app did not start"
            time.sleep(0.2)
        categories = set(browser.evaluate("Object.keys(categories)"))
        assert REQUIRED_CATEGORIES <= categories, categories
        widths = browser.evaluate(LOAD_IMAGES)
        assert widths and all(w > 0 for w in widths.values()), {n: w for n, w in widths.items() if not w}
        assert len(widths) == sum(
            r["mime_type"] == "image/svg+xml" for r in _embedded(path.read_text(), "results").values()
        )
        assert any(n.endswith("pareto.svg") for n in widths)
        assert any(n.endswith("predicted_vs_measured.svg") for n in widths)
        assert browser.evaluate(SHOW_PARETO) > 0, "the Pareto plot did not render in the report"
        shot = path.parent / "report_screenshot.png"
        browser.screenshot(shot)
        assert shot.stat().st_size > 10_000
    finally:
        browser.close()
