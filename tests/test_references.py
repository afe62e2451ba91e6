"""Every Markdown file the repository refers to exists, and every SPEC.md citation names a heading.

The files read are the repository's text files (*.py, *.md, .ci/*, requirements*.txt), as git
lists them: tracked, plus untracked ones that .gitignore does not exclude. Two kinds of
reference to a Markdown file are checked:

- a Markdown link `[text](path)` to a .md file (anchor and query left aside), resolved from the folder
  of the file that holds it, or from the repository root when it starts with '/';
- any other mention of a name ending in .md, in any of those files. Code names files relative
  to the repository root (SPEC.md) or writes outputs into a results folder under their bare
  name (reach.md is results/reach/reach.md), so such a mention counts as found when it names
  a repository file from the root, from the mentioning file's folder, or as the tail of a
  repository path.

A citation of a section of SPEC.md must name one of its headings word for word, number included.
"""
import functools
import os
import re
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SPEC = "SPEC.md"

MARKDOWN_LINK = re.compile(r"!?\[[^\]]*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
REFERENCE_LINK = re.compile(r"^\s{0,3}\[[^\]]+\]:\s*<?(\S+?)>?(?:\s|$)", re.MULTILINE)
URL_SCHEME = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*:")
# a name ending in .md, not glued to a longer word or path (so not the tail of a URL)
MENTION = re.compile(r"(?<![\w./-])((?:[\w.-]+/)*[\w-][\w.-]*\.md)(?![\w-])", re.IGNORECASE)
CITATION = re.compile(r"SPEC\.md,[\s#]+section[\s#]+\"")   # a line break may fall in a comment
HEADING = re.compile(r"^#{1,6}\s+(.+?)\s*#*\s*$", re.MULTILINE)


@functools.lru_cache(maxsize=1)
def repository_files():
    """The repository's files, relative to ROOT with '/' separators."""
    try:
        listed = subprocess.run(
            ["git", "ls-files", "--cached", "--others", "--exclude-standard", "-z"],
            cwd=ROOT, capture_output=True, text=True, check=True).stdout
    except (OSError, subprocess.CalledProcessError) as error:
        pytest.skip(f"the repository's files cannot be listed with git ({error})")
    return frozenset(path for path in listed.split("\0") if path and (ROOT / path).is_file())


def is_text_file(path):
    name = path.rsplit("/", 1)[-1]
    return (path.endswith((".py", ".md")) or path.startswith(".ci/")
            or (name.startswith("requirements") and name.endswith(".txt")))


def text_files():
    return sorted(path for path in repository_files() if is_text_file(path))


def read(path):
    return (ROOT / path).read_text(encoding="utf-8", errors="replace")


def line_of(text, position):
    return text.count("\n", 0, position) + 1


def normalized(path):
    """A repository-relative path without '.' and '..' parts, or None if it leaves the root."""
    path = os.path.normpath(path).replace(os.sep, "/")
    return None if path == ".." or path.startswith("../") else path


def link_targets(text):
    """(position, target) of every Markdown link to a .md file in `text`."""
    for pattern in (MARKDOWN_LINK, REFERENCE_LINK):
        for match in pattern.finditer(text):
            target = match.group(1)
            if URL_SCHEME.match(target):
                continue
            target = target.split("#", 1)[0].split("?", 1)[0]
            if target.lower().endswith(".md"):
                yield match.start(1), target


def link_resolves(source, target):
    folder = os.path.dirname(source)
    path = normalized(target.lstrip("/") if target.startswith("/") else os.path.join(folder, target))
    return path in repository_files()


def mention_resolves(source, mention):
    files = repository_files()
    candidates = (mention, os.path.join(os.path.dirname(source), mention))
    if any(normalized(candidate) in files for candidate in candidates):
        return True
    tail = normalized(mention)
    return tail is not None and any(path.endswith("/" + tail) for path in files)


def spec_headings():
    return {heading.strip() for heading in HEADING.findall(read(SPEC))}


def cited_heading(text, end):
    """The text after a citation's opening quote, line breaks and comment marks folded into spaces."""
    rest = text[end:end + 300]
    return re.sub(r"\s*\n\s*(?:#+\s*)?", " ", rest)


# ------------------------------------------------------------------------------ the checks

def test_the_checks_see_the_repository():
    files = repository_files()
    assert SPEC in files, "SPEC.md is missing at the repository root"
    assert "tests/test_references.py" in files
    assert any(CITATION.search(read(path)) for path in text_files()), "no SPEC.md citation found"


def test_markdown_links_point_at_markdown_files_of_the_repository():
    broken = [f"{path}:{line_of(text, position)}: [..]({target})"
              for path in text_files() if path.endswith(".md")
              for text in [read(path)]
              for position, target in link_targets(text)
              if not link_resolves(path, target)]
    assert not broken, "links to Markdown files that are not in the repository:\n" + "\n".join(broken)


def test_every_mentioned_markdown_file_exists():
    missing = [f"{path}:{line_of(text, match.start(1))}: {match.group(1)}"
               for path in text_files()
               for text in [read(path)]
               for match in MENTION.finditer(text)
               if not mention_resolves(path, match.group(1))]
    assert not missing, "mentions of Markdown files that are not in the repository:\n" + "\n".join(missing)


def test_every_spec_citation_names_a_heading_of_spec():
    headings = spec_headings()
    wrong = []
    for path in text_files():
        text = read(path)
        for match in CITATION.finditer(text):
            cited = cited_heading(text, match.end())
            if not any(cited.startswith(heading + '"') for heading in headings):
                wrong.append(f"{path}:{line_of(text, match.start())}: "
                             f"section \"{cited.split(chr(34), 1)[0][:60]}...")
    assert not wrong, ("SPEC.md citations of headings that SPEC.md does not have "
                       f"(it has: {sorted(headings)}):\n" + "\n".join(wrong))


# ------------------------------------------------------------------------------ the checkers themselves

def test_the_checkers_tell_a_broken_reference_from_a_sound_one():
    gone = "no_such_" + "note" + ".md"
    assert not link_resolves("README.md", gone)
    assert not link_resolves("results/README.md", "../" + gone)
    assert not link_resolves("README.md", "../outside/" + SPEC)   # above the root
    assert link_resolves("results/README.md", "../" + SPEC)
    assert link_resolves("results/reach/README.md", "/" + SPEC)
    assert not mention_resolves("models.py", gone)
    assert mention_resolves("models.py", SPEC)
    sample = "see [a](" + gone + "#x), [b](https://example.org/" + gone + ") and [c](#anchor)"
    assert [target for _, target in link_targets(sample)] == [gone]
    assert [m.group(1) for m in MENTION.finditer("x `" + SPEC + "`, https://host/y/" + gone)] == [SPEC]
    text = 'as SPEC.md, section\n    # "4. Training protocol" says'
    match = CITATION.search(text)
    assert match and cited_heading(text, match.end()).startswith('4. Training protocol"')
