"""The READMEs: the main one and the reach overview stay short, every link lands, every command
they give runs, and the cluster commands bind every server to a private address."""
import glob
import importlib
import os
import re

import pytest
from click.testing import CliRunner

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
MAIN_README = "README.md"
README_LIMIT = 15_000          # characters: the main README is read in full by a newcomer
REACH_README = os.path.join("results", "reach", "README.md")
REACH_LIMIT = 25_000           # characters: an overview read in full; each study's write-up is in its folder
READMES = [MAIN_README, os.path.join("experiment", "README.md")] + sorted(
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


def test_the_reach_overview_is_short_enough_to_read_in_full():
    length = len(read(REACH_README))
    assert length <= REACH_LIMIT, f"{REACH_README} has {length:,} characters; at most {REACH_LIMIT:,}"


def test_the_reach_overview_lists_each_of_its_sections_before_the_first():
    text = FENCE.sub("", read(REACH_README))
    head, first, _ = text.partition("\n## ")
    sections = re.findall(r"^## (.+)$", text, re.MULTILINE)
    listed = {target[1:] for target in LINK.findall(head) if target.startswith("#")}
    missing = [section for section in sections if github_anchor(section) not in listed]
    assert first and not missing, f"{REACH_README}: its contents list misses {missing}"


def test_every_folder_of_the_reach_study_has_a_readme_the_overview_links():
    reach = os.path.dirname(REACH_README)
    folders = sorted(name for name in os.listdir(os.path.join(ROOT, reach))
                     if os.path.isdir(os.path.join(ROOT, reach, name)))
    linked = set(links(REACH_README))
    unread = [name for name in folders if not os.path.isfile(os.path.join(ROOT, reach, name, "README.md"))]
    unlinked = [name for name in folders if f"{name}/README.md" not in linked]
    assert folders and not unread and not unlinked, \
        f"{reach}: folders without a README {unread}, READMEs the overview does not link {unlinked}"


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


# ------------------------------------------------------------------------------ the cluster commands

# A Dask scheduler or worker runs whatever a client sends it, and each of its servers listens on
# every interface unless told otherwise: --host for its own port (and a worker's nanny), and
# --dashboard-address for its HTTP server, which --no-dashboard alone does not stop.
DASK_SERVER = re.compile(r"python -m distributed\.cli\.dask_(scheduler|worker)\b([^\n#]*)")
EVERY_INTERFACE = {"", "*", "0.0.0.0", "::", "[::]"}


def more_machines():
    """The main README's section "More machines", up to the next section, and the page on
    clusters it links to (experiment/README.md, "On a cluster", to its end)."""
    text = read(MAIN_README)
    start = text.index("\n## More machines\n")
    page = read(os.path.join(ROOT, "experiment", "README.md"))
    return text[start:text.index("\n## ", start + 1)] + page[page.index("\n## On a cluster\n"):]


def option_value(arguments, option):
    """The value a command line gives an option (`--opt v` or `--opt=v`), or None."""
    match = re.search(rf"(?<![\w-]){re.escape(option)}(?:=|[ \t]+)([^\s'\"]+)", arguments)
    return match.group(1) if match else None


def host_of(address):
    """The host of HOST:PORT, `tcp://HOST:PORT` or a bare HOST; '' for ':PORT'."""
    address = address.split("://", 1)[-1]
    host, colon, port = address.rpartition(":")
    return host if colon and port.isdigit() else address


def exposures(kind, arguments):
    """What a scheduler or worker command line leaves on every interface, in words."""
    found = []
    host = option_value(arguments, "--host")
    if host is None or host_of(host) in EVERY_INTERFACE:
        found.append("no --host on a private address: it listens on every interface")
    dashboard = option_value(arguments, "--dashboard-address")
    if dashboard is None or host_of(dashboard) in EVERY_INTERFACE:
        found.append("no --dashboard-address on a private address: its HTTP server listens on "
                     "every interface (with --no-dashboard too)")
    if kind == "worker" and option_value(arguments, "--nthreads") != "1":
        found.append("not --nthreads 1: a worker runs one thread per process")
    return found


def cluster_commands():
    """(kind, arguments) of every scheduler and worker command in the section's code."""
    section = more_machines()
    return [match.groups() for block in FENCE.finditer(section)
            for match in DASK_SERVER.finditer(block.group(0))]


def test_the_exposure_check_tells_a_private_command_from_an_open_one():
    assert exposures("scheduler", "--host 10.0.0.5 --dashboard-address 10.0.0.5:8787") == []
    assert len(exposures("scheduler", "--host 10.0.0.5")) == 1                 # dashboard on :8787
    assert len(exposures("scheduler", "--host 10.0.0.5 --no-dashboard")) == 1
    assert len(exposures("scheduler", "--dashboard-address=:8787")) == 2
    assert exposures("worker", "tcp://10.0.0.5:8786 --host 10.0.0.6 "
                               "--dashboard-address 10.0.0.6:0 --nthreads 1") == []
    assert len(exposures("worker", "tcp://10.0.0.5:8786 --nworkers 2 --nthreads 1")) == 2
    assert len(exposures("worker", "tcp://10.0.0.5:8786 --host 0.0.0.0 "
                                   "--dashboard-address 10.0.0.6:0 --nthreads 2")) == 2


def test_the_cluster_commands_bind_every_server_to_a_private_address():
    commands = cluster_commands()
    assert {kind for kind, _ in commands} == {"scheduler", "worker"}, "More machines: no commands found"
    found = [f"dask_{kind} {arguments.strip()}: {problem}"
             for kind, arguments in commands for problem in exposures(kind, arguments)]
    assert not found, "README.md, More machines:\n" + "\n".join(found)


@pytest.mark.parametrize("kind", ["scheduler", "worker"])
def test_every_cluster_command_option_is_offered_by_its_help(kind):
    command = importlib.import_module(f"distributed.cli.dask_{kind}").main
    result = CliRunner().invoke(command, ["--help"], prog_name=f"dask_{kind}")
    assert result.exit_code == 0, result.output
    used = {option for found, arguments in cluster_commands() if found == kind
            for option in OPTION.findall(arguments)}
    assert used and not used - set(OPTION.findall(result.output)), sorted(used)


def test_the_slurm_example_binds_the_scheduler_and_the_workers_privately():
    (block,) = [block.group(0) for block in FENCE.finditer(more_machines())
                if "SLURMCluster(" in block.group(0)]
    assert re.search(r"\binterface=\"\w+\"", block), "no interface= for the scheduler and workers"
    dashboard = re.search(r"\"dashboard_address\":\s*\"([^\"]*)\"", block)
    assert dashboard and host_of(dashboard.group(1)) not in EVERY_INTERFACE, \
        "the scheduler's dashboard is not bound to a private address"
    worker = re.search(r"worker_extra_args=\[\"--dashboard-address\",\s*\"([^\"]*)\"\]", block)
    assert worker and host_of(worker.group(1)) not in EVERY_INTERFACE, \
        "the workers' HTTP servers are not bound to a private address"
    assert re.search(r"\bcores=1, processes=1\b", block), "a worker must run one thread"


def test_the_cluster_note_says_a_scheduler_or_worker_runs_any_code_sent_to_it():
    prose = " ".join(FENCE.sub("", more_machines()).split())
    assert re.search(r"scheduler or (a )?worker runs any code sent to it", prose), \
        "More machines does not say that a scheduler or worker runs any code sent to it"
