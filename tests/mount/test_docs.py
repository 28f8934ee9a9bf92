"""--help, hubfs(1), the README and the bash completion name the same options:
every option `hubfs --help` lists has an entry under OPTIONS in the man page,
is in the README (in backquotes) and is completed by bash; every entry under
OPTIONS is in --help. Also: the man page renders without warnings, the user
unit passes `systemd-analyze verify`, and the completion completes."""
import os
import re
import shlex
import shutil
import subprocess

import pytest

from tests.mount.conftest import HUBFS, ROOT

MAN = os.path.join(ROOT, "fs", "dist", "hubfs.1.in")
UNIT = os.path.join(ROOT, "fs", "dist", "hubfs@.service.in")
COMPLETION = os.path.join(ROOT, "fs", "dist", "hubfs.bash")
README = os.path.join(ROOT, "README.md")
TYPES = ("contacts", "companies", "deals", "tickets")


def names_in(text):
    """Option names in a piece of option syntax: "-o max_threads=n" ->
    {"max_threads"}, "-h, --help" -> {"-h", "--help"}."""
    out = set()
    for piece in re.split(r"[\s,|]+", text):
        piece = piece.strip("[]()")
        if not piece or piece == "-o":
            continue
        if piece.startswith("-"):
            out.add(re.match(r"-{1,2}[A-Za-z][\w-]*", piece).group(0))
        else:
            m = re.match(r"([a-z][a-z_]*(?:<type>)?)(=|$)", piece)
            if m:
                out.add(m.group(1))
    expanded = set()
    for n in out:
        expanded |= {n.replace("<type>", t) for t in TYPES} if "<type>" in n else {n}
    return expanded


def help_options():
    r = subprocess.run([HUBFS, "--help"], capture_output=True, text=True, check=True)
    opts = set()
    for line in r.stdout.splitlines():
        m = re.match(r"\s+(-o \S+|-\w(?:\s+(?:--[\w-]+|-o \w+))?|--[\w-]+)\s", line + " ")
        if m:
            opts |= names_in(m.group(1))
        m = re.match(r"\s*(?:usage: )?hubfs (status|sync) (.*)", line)
        if m:
            opts |= {o for o in re.findall(r"--[\w-]+", m.group(2))}
    return opts


def man_options():
    """Names in the .TP entries of the OPTIONS section (bold parts only)."""
    with open(MAN) as f:
        text = f.read()
    section = text.split("\n.SH OPTIONS\n", 1)[1].split("\n.SH ", 1)[0]
    lines = section.split("\n")
    opts = set()
    for i, line in enumerate(lines):
        if line != ".TP":
            continue
        head = re.sub(r"\\f[BIRP]", "", lines[i + 1].replace("\\-", "-"))
        macro, _, rest = head.partition(" ")
        words = shlex.split(rest)
        bold = {".B": words, ".BI": words[0::2], ".BR": words[0::2], ".IR": words[1::2]}[macro]
        for w in bold:
            opts |= names_in(w)
    return opts


def test_help_and_man_page_list_the_same_options():
    h, m = help_options(), man_options()
    # sanity: the parsers see what is there
    assert {"api_url", "portal", "props_deals", "-f", "--version", "max_threads", "--json"} <= h, h
    assert not (h - m), f"in --help, not under OPTIONS in hubfs(1): {sorted(h - m)}"
    assert not (m - h), f"under OPTIONS in hubfs(1), not in --help: {sorted(m - h)}"


def test_readme_names_every_option():
    with open(README) as f:
        readme = f.read()
    inline = re.sub(r"```.*?```", "", readme, flags=re.S)  # fenced blocks out, then `spans`
    code = " ".join(re.findall(r"`([^`\n]+)`", inline))
    missing = [o for o in sorted(help_options())
               if not re.search(r"(?<![\w-])" + re.escape(o) + r"(?![\w-])", code)]
    assert not missing, f"options of --help the README does not name (in backquotes): {missing}"


def test_completion_offers_every_option():
    with open(COMPLETION) as f:
        comp = f.read()
    words = set()
    for w in re.findall(r"[\w-]+=?", comp):
        words.add(w.rstrip("="))
    missing = sorted(o for o in help_options() if o not in words)
    assert not missing, f"not completed by fs/dist/hubfs.bash: {missing}"


def test_man_page_renders_without_warnings(tmp_path):
    if not shutil.which("man"):
        pytest.skip("man-db is not installed")
    page = tmp_path / "hubfs.1"
    with open(MAN) as f:
        page.write_text(f.read().replace("@VERSION@", "0"))
    r = subprocess.run(["man", "--warnings", "-E", "UTF-8", "-l", str(page)], capture_output=True,
                       text=True, env=dict(os.environ, MANWIDTH="80", LC_ALL="C.UTF-8",
                                           MAN_KEEP_FORMATTING="0"))
    assert r.returncode == 0 and r.stderr == "", r.stderr
    out = re.sub(".\x08", "", r.stdout)  # overstrike bold
    assert "EXIT STATUS" in out and "hubfs sync" in out


def test_unit_passes_systemd_analyze_verify(tmp_path):
    if not shutil.which("systemd-analyze"):
        pytest.skip("systemd-analyze is not installed")
    with open(UNIT) as f:
        unit = f.read()
    (tmp_path / "hubfs@.service").write_text(
        unit.replace("@BINDIR@", os.path.dirname(HUBFS)).replace("@TYPE@", "notify"))
    rt = tmp_path / "runtime"
    rt.mkdir(mode=0o700)
    r = subprocess.run(["systemd-analyze", "--user", "--man=no", "verify",
                        str(tmp_path / "hubfs@crm.service")], capture_output=True, text=True,
                       env=dict(os.environ, XDG_RUNTIME_DIR=str(rt)))
    # verify exits 0 on settings it ignores: any output is a finding
    assert r.returncode == 0 and (r.stdout + r.stderr).strip() == "", r.stdout + r.stderr
    # and it does look: a broken setting is reported
    (tmp_path / "hubfs@.service").write_text(
        unit.replace("@BINDIR@", os.path.dirname(HUBFS)).replace("@TYPE@", "notifyy"))
    r = subprocess.run(["systemd-analyze", "--user", "--man=no", "verify",
                        str(tmp_path / "hubfs@crm.service")], capture_output=True, text=True,
                       env=dict(os.environ, XDG_RUNTIME_DIR=str(rt)))
    assert "notifyy" in r.stdout + r.stderr


def complete(line, tmp_path, mounts_file=None):
    """COMPREPLY of the completion for the command line `line` (cursor at the end)."""
    lib = "/usr/share/bash-completion/bash_completion"
    if not os.path.exists(lib):
        pytest.skip("bash-completion is not installed")
    words = line.split(" ")
    script = f"""
source {lib}
source {COMPLETION}
COMP_LINE={shlex.quote(line)}
COMP_POINT=${{#COMP_LINE}}
COMP_WORDS=({" ".join(shlex.quote(w) for w in words)})
COMP_CWORD={len(words) - 1}
_hubfs hubfs {shlex.quote(words[-1])} {shlex.quote(words[-2])}
printf '%s\\n' "${{COMPREPLY[@]}}"
"""
    cfg = tmp_path / "config" / "hubfs"
    cfg.mkdir(parents=True, exist_ok=True)
    (cfg / "config").write_text("[hubfs]\nttl = 60\n\n[profile crm]\nportal = 1\n\n[profile eu-2]\n")
    r = subprocess.run(["bash", "-c", script], capture_output=True, text=True, cwd=tmp_path,
                       env=dict(os.environ, XDG_CONFIG_HOME=str(tmp_path / "config")))
    assert r.returncode == 0, r.stderr
    return set(r.stdout.split())


def test_bash_completion(tmp_path):
    (tmp_path / "crm").mkdir()
    assert {"status", "sync", "hubspot", "hubspot:", "profile:crm", "profile:eu-2", "crm"} <= \
        complete("hubfs ", tmp_path)
    assert complete("hubfs profile:c", tmp_path) == {"profile:crm"}
    assert complete("hubfs -o tok", tmp_path) == {"token_file="}
    assert complete("hubfs -o ro,ttl=5,drain", tmp_path) == {"ro,ttl=5,drain_timeout="}
    assert complete("hubfs -o log_level=d", tmp_path) == {"log_level=debug"}
    assert complete("hubfs status --j", tmp_path) == {"--json"}
    assert complete("hubfs --ver", tmp_path) == {"--version"}
