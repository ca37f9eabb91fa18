"""Check a built documentation site: what a reader must find on it.

Usage: ``python docs/check_site.py docs/_build/html``. Exits non-zero, naming the pages, when a
public estimator's API page has no rendered Examples section, or a gallery page shows no figure.
"""

import re
import sys
from pathlib import Path

import skood

_RENDERED_EXAMPLES = re.compile(r'<p class="rubric">Examples</p>\s*<div class="[^"]*highlight')


def _estimators() -> list[str]:
    return [
        name
        for name in skood.__all__
        if isinstance(getattr(skood, name), type)
        and not issubclass(getattr(skood, name), Exception | Warning)
    ]


def main(site: Path) -> int:
    problems = []
    for name in _estimators():
        page = site / "generated" / f"skood.{name}.html"
        if not page.exists():
            problems.append(f"{page}: missing")
        elif not _RENDERED_EXAMPLES.search(page.read_text()):
            problems.append(f"{page}: no rendered Examples section")
    gallery = sorted((site / "auto_examples").glob("plot_*.html"))
    if not gallery:
        problems.append(f"{site / 'auto_examples'}: no gallery pages")
    for page in gallery:
        if not re.search(r'<img [^>]*src="[^"]*sphx_glr_plot_\w+_\d{3}\.png"', page.read_text()):
            problems.append(f"{page}: no figure")
    for problem in problems:
        print(problem)
    print(f"checked {len(_estimators())} estimator pages and {len(gallery)} gallery pages")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main(Path(sys.argv[1])))
