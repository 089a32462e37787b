"""The documentation holds together: relative links resolve, down to the heading, and the README
stays a landing page that points into docs/."""

import re

from conftest import ROOT

README = ROOT / "README.md"
DOCS = sorted((ROOT / "docs").glob("*.md"))
PAGES = [README, *DOCS, ROOT / "benchmarks" / "NOTES.md"]
LINK = re.compile(r"\[[^\]]*\]\(([^)\s]+)\)")


def prose(text):
    """The text without fenced code blocks and inline code, where brackets are not links."""
    text = re.sub(r"^```.*?^```", "", text, flags=re.M | re.S)
    return re.sub(r"`[^`]*`", "", text)


def slug(heading):
    # GitHub's anchors: lower case, punctuation dropped (word characters, hyphens, spaces kept),
    # spaces to hyphens.
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


def anchors(path):
    text = re.sub(r"^```.*?^```", "", path.read_text(), flags=re.M | re.S)
    seen, out = {}, set()
    for heading in re.findall(r"^#{1,6} (.+)$", text, re.M):
        base = slug(heading)
        n = seen.get(base, 0)
        seen[base] = n + 1
        out.add(base if n == 0 else f"{base}-{n}")  # repeated headings get -1, -2, ...
    return out


def links(path):
    return [t for t in LINK.findall(prose(path.read_text())) if not re.match(r"[a-z]+:", t)]


def test_slugs_follow_github():
    assert slug("LENNA's blocks") == "lennas-blocks"
    assert slug("NAS-Bench-201 (issue 14), 2026-11-23") == "nas-bench-201-issue-14-2026-11-23"
    assert slug("Profiles, SLURM and the output cache") == "profiles-slurm-and-the-output-cache"


def test_every_relative_link_resolves_to_a_file_and_heading():
    broken, checked = [], 0
    for page in PAGES:
        for target in links(page):
            checked += 1
            file, _, anchor = target.partition("#")
            dest = (page.parent / file).resolve() if file else page
            if not dest.exists():
                broken.append(f"{page.relative_to(ROOT)}: {target} (no such file)")
            elif anchor and (dest.suffix != ".md" or anchor not in anchors(dest)):
                broken.append(f"{page.relative_to(ROOT)}: {target} (no such heading)")
    assert checked > 50  # the pages do link to each other
    assert not broken, "\n".join(broken)


def test_the_readme_is_a_landing_page():
    assert len(README.read_text().splitlines()) <= 300


def test_the_readme_links_every_docs_page():
    assert len(DOCS) >= 3
    linked = {(ROOT / t.partition("#")[0]).resolve() for t in links(README)}
    missing = [p.name for p in DOCS if p.resolve() not in linked]
    assert not missing, missing
