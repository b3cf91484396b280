"""report.html and compare.html share one page shell: the doctype, the style and the title."""

from __future__ import annotations

from imgclf.evaluate.html_parts import PAGE_CSS, page


def test_page_wraps_parts_under_the_shared_style() -> None:
    html = page("a <b>", ["<p>one</p>", "<p>two</p>"])
    assert html.startswith('<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n')
    assert '<meta name="viewport"' in html and "<title>a &lt;b&gt;</title>" in html
    assert f"<style>{PAGE_CSS}</style>" in html
    assert html.endswith("<main>\n<p>one</p>\n<p>two</p>\n</main>\n</body>\n</html>\n")


def test_page_without_the_viewport_line() -> None:
    assert '<meta name="viewport"' not in page("t", ["x"], viewport=False)
