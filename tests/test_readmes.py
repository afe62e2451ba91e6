"""The READMEs: the main one stays short, every link lands, every command they give runs."""
import glob
import importlib
import os
import re

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
MAIN_README = "README.md"
README_LIMIT = 15_000          # characters: the main README is read in full by a newcomer
READMES = [MAIN_README] + sorted(
    os.path.relpath(path, ROOT)
    for path in glob.glob(os.path.join(ROOT, "results", "**", "README.md"), recursive=True))

FENCE = re.compile(r"^(```|~~~).*?^\1[ \t]*$", re.MULTILINE | re.DOTALL)
INLINE_CODE = re.compile(r"`([^`]+)`")
LINK = re.compile(r"!?\[(?:[^\[\]]|\[[^\]]*\])*\]\(([^)\s]+)\)")
HEADING = re.compile(r"^#{1,6}[ \t]+(.+?)[ \t]*#*[ \t]*$", re.MULTILINE)
# A command of this repository: one of the assignment's scripts or a study module.
COMMAND = re.compile(r"\bpython (train_rnn\.py|generate_data_adding_problem\.py|"
                     r"benchmark_scalar_vs_vector\.py|-m studies\.[a-z_]+)\b([^\n`#|&;]*)")
OPTION = re.compile(r"(?<![\w-])--[a-z][a-z0-9-]*")


def read(path):
    with open(os.path.join(ROOT, path), encoding="utf-8") as f:
        return f.read()


def github_anchor(heading):
    """The id GitHub gives a heading: lower case, punctuation dropped, spaces made hyphens."""
    text = re.sub(r"!?\[([^\]]*)\]\([^)]*\)", r"\1", heading)      # a link keeps its text
    text = re.sub(r"[^\w\- ]", "", text.lower())
    return text.replace(" ", "-")


def anchors(path):
    """Every heading anchor of a markdown file, with GitHub's -1, -2 suffixes for repeats."""
    found, seen = set(), {}
    for heading in HEADING.findall(FENCE.sub("", read(path))):
        slug = github_anchor(heading)
        found.add(slug if slug not in seen else f"{slug}-{seen[slug]}")
        seen[slug] = seen.get(slug, 0) + 1
    return found


def links(path):
    """The link targets of a markdown file, outside code."""
    text = INLINE_CODE.sub("", FENCE.sub("", read(path)))
    return LINK.findall(text)


def code_texts(path):
    """The code of a markdown file: fenced blocks, indented blocks and inline code spans."""
    text = read(path)
    blocks = [match.group(0) for match in FENCE.finditer(text)]
    rest = FENCE.sub("", text)
    indented = [line for line in rest.splitlines() if line.startswith("    ")]
    spans = [" ".join(span.split()) for span in INLINE_CODE.findall(rest)]   # a span may wrap
    return blocks + indented + spans


def readme_commands():
    """{script or module: set of options} over every command written in a README."""
    commands = {}
    for readme in READMES:
        for code in code_texts(readme):
            for target, arguments in COMMAND.findall(code):
                commands.setdefault(target, set()).update(OPTION.findall(arguments))
    return commands


COMMANDS = readme_commands()


def test_the_main_readme_is_short_enough_to_read_in_full():
    length = len(read(MAIN_README))
    assert length <= README_LIMIT, f"README.md has {length:,} characters; at most {README_LIMIT:,}"


def test_github_anchors_drop_punctuation_and_keep_underscores():
    assert github_anchor("nn.LSTM at L = 1000") == "nnlstm-at-l--1000"
    assert github_anchor("Scalar vs vector Layer_out") == "scalar-vs-vector-layer_out"
    assert github_anchor('5. What "solved" means') == "5-what-solved-means"


@pytest.mark.parametrize("readme", READMES)
def test_every_relative_link_lands_on_a_file_and_heading(readme):
    targets = links(readme)
    assert targets, f"{readme} has no links"
    broken = []
    for target in targets:
        if re.match(r"[a-z][a-z0-9+.-]*:", target):               # http:, https:, mailto:
            continue
        path, _, anchor = target.partition("#")
        resolved = os.path.normpath(os.path.join(os.path.dirname(readme), path)) if path else readme
        if not os.path.isfile(os.path.join(ROOT, resolved)):
            broken.append(f"{target}: no file {resolved}")
        elif anchor and anchor not in anchors(resolved):
            broken.append(f"{target}: no heading #{anchor} in {resolved}")
    assert not broken, f"{readme}: " + "; ".join(broken)


def test_the_readmes_give_commands_of_the_scripts_and_the_studies():
    assert {"train_rnn.py", "-m studies.reach", "-m studies.compare_results"} <= set(COMMANDS)


def module_of(target):
    """The module a README command runs: train_rnn.py is train_rnn, -m studies.reach studies.reach."""
    return target[len("-m "):] if target.startswith("-m ") else target[:-len(".py")]


@pytest.mark.parametrize("target", sorted(COMMANDS))
def test_every_readme_command_answers_help_with_the_options_it_uses(target, capsys, monkeypatch):
    # In this process, through the command's main(argv): a new interpreter for each of them
    # would spend seconds importing torch only to print its help.
    module = importlib.import_module(module_of(target))
    path = module.__file__
    with open(path, encoding="utf-8") as f:
        assert re.search(r'^if __name__ == "__main__":\n\s+main\(\)', f.read(), re.MULTILINE), \
            f"{os.path.relpath(path, ROOT)} does not call main() when run as a command"
    monkeypatch.chdir(ROOT)
    monkeypatch.setenv("COLUMNS", "100")
    with pytest.raises(SystemExit) as stop:
        module.main(["--help"])
    assert stop.value.code in (0, None), f"python {target} --help failed"
    offered = set(OPTION.findall(capsys.readouterr().out))
    assert "--help" in offered, f"python {target} --help printed no options"
    missing = sorted(COMMANDS[target] - offered)
    assert not missing, f"python {target} --help does not offer {', '.join(missing)}, which a README uses"
