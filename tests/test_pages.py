"""The one HTML renderer (lc_plugin.validation.pages): escaping, the shared stylesheet, the grid run's page."""

from __future__ import annotations

import base64
import re

from lc_plugin.runs.run_page import run_page
from lc_plugin.validation.pages import STYLESHEET, bullets, cards, esc, image, page, swatch, table


def test_pieces_escape_text_and_keep_html_cells():
    assert esc("a <b> & 'c' \"d\"") == "a &lt;b&gt; &amp; &#x27;c&#x27; &quot;d&quot;"
    assert bullets(["x < y & z"], "meta") == '<ul class="meta"><li>x &lt; y &amp; z</li></ul>'
    assert cards([("k <1>", "v & w")]) == '<div class="headline"><div class="card"><div class="v">v &amp; w</div><div class="k">k &lt;1&gt;</div></div></div>'
    # Cells are HTML: the first column (names) is left-aligned, the others (numbers) right.
    assert table(["Class", "n"], [[esc("<b>"), "<b>3</b>"]], row_classes=["failed"]) == (
        '<table><thead><tr><th class="name">Class</th><th>n</th></tr></thead>'
        '<tbody><tr class="failed"><td class="name">&lt;b&gt;</td><td><b>3</b></td></tr></tbody></table>'
    )
    assert table(None, [["1"]], text=()) == "<table><tbody><tr><td>1</td></tr></tbody></table>"


def test_swatch_takes_only_hex_colours():
    assert swatch("#1a2B3c") == '<span class="swatch" style="background:#1a2B3c"></span>'
    for bad in ("red", "#12345", '#123456" onload="x', None):  # anything else would go into a style attribute
        assert 'style="background:#cccccc"' in swatch(bad)


def test_image_embeds_the_png_and_escapes_the_caption():
    png = b"\x89PNG\r\n\x1a\nfake"
    html = image(png, 'a "b" <c>')
    data, alt = re.fullmatch(r'<p><img src="data:image/png;base64,([A-Za-z0-9+/=]+)" alt="([^"]*)"></p>', html).groups()
    assert base64.b64decode(data) == png and alt == "a &quot;b&quot; &lt;c&gt;"


def test_page_has_the_title_escaped_and_the_one_stylesheet():
    html = page("A <b> & c", ["<h1>x</h1>"])
    assert html.startswith("<!DOCTYPE html>\n") and html.endswith("</body></html>\n")
    assert "<title>A &lt;b&gt; &amp; c</title>" in html and f"<style>{STYLESHEET}</style>" in html


def test_run_page_escapes_what_patches_and_parameters_hold():
    report = {
        "run_folder": "/runs/<a&b>",
        "executor": "threads",
        "workers": 2,
        "wall_s": 3.25,
        "counts": {"done": 1, "skipped": 0, "failed": 1},
        "parameters": {"grid": "g<1>.gpkg", "bands": ["B02"]},
        "parameters_hash": "abc",
        "versions": {"numpy": "1.24"},
        "patches": [
            {"patch": "p<1>", "status": "done", "duration_s": 1.5},
            {"patch": "p2", "status": "failed", "error": "boom & <bad>", "traceback": "Traceback <x>"},
        ],
    }
    html = run_page(report, "/runs/x/workflow.png")
    assert f"<style>{STYLESHEET}</style>" in html  # the same stylesheet as the accuracy and area reports
    assert "/runs/&lt;a&amp;b&gt; — executor threads, 2 worker(s), 3.2 s;\n1 done, 0 skipped (done before), 1 failed." in html
    assert '<tr class="done"><td class="name">p&lt;1&gt;</td><td class="name">done</td><td>1.5</td><td class="name"></td></tr>' in html
    assert "boom &amp; &lt;bad&gt;<details><summary>traceback</summary><pre>Traceback &lt;x&gt;</pre></details>" in html
    assert "<td class=\"name\">&quot;g&lt;1&gt;.gpkg&quot;</td>" in html and '<img src="workflow.png" alt="workflow">' in html
    assert "<img" not in run_page(report, None)
