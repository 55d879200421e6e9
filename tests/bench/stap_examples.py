#!/usr/bin/env python3
"""SystemTap's own example scripts through stapxx-rs: resolve, load, run.

    sudo python3 tests/bench/stap_examples.py SYSTEMTAP_CHECKOUT
        [--bin target/release/stapxx-rs] [--run-seconds S] [--only NAME ...]
        [--out FILE]

SYSTEMTAP_CHECKOUT is an unpacked SystemTap source tree; its
`testsuite/systemtap.examples/` holds the scripts SystemTap ships as
examples (general, io, memory, network, process, profiling, ...), each
with a `.meta` file whose `test_installcheck:` line is the command
SystemTap's own test suite runs it with. Nothing of it is copied
anywhere. For every `.stp` script this runs, from the script's directory:

    stapxx-rs -p2 SCRIPT ARGS          (resolve)
    stapxx-rs -p4 SCRIPT ARGS          (load and verify; if -p2 passed)
    stapxx-rs -T S SCRIPT ARGS         (run S seconds; if -p4 passed)

ARGS are the script arguments of its `test_installcheck:` line (with its
`-c CMD`, `-g`, `-w`, `-I DIR`, `-G NAME=VALUE`; its own `-T` is replaced
by ours; shell substitutions in it are not run). A script
whose arguments name kernel functions (`kernel.function(...)`, which this
kernel cannot probe) fails at -p2 with that cause, as it should. It
prints a markdown table (last pass reached, the first error line), the
totals, and the failures grouped by their message. Must run as root.
"""

import argparse
import collections
import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def install_args(meta: Path, script: str):
    """(stap options, script arguments) of the meta file's test_installcheck."""
    if not meta.exists():
        return [], []
    for line in meta.read_text(errors="replace").splitlines():
        if not line.startswith("test_installcheck:"):
            continue
        cmd = line.split(":", 1)[1].strip()
        # Shell substitutions (`grep ... /proc/kallsyms`) are left as they are.
        try:
            words = shlex.split(cmd)
        except ValueError:
            return [], []
        if not words or words[0] != "stap":
            return [], []
        opts, args, seen_script = [], [], False
        i = 1
        while i < len(words):
            w = words[i]
            if w == "-T" and i + 1 < len(words):
                i += 2
                continue
            if w == "-c" and i + 1 < len(words):
                opts += ["-c", words[i + 1]]
                i += 2
                continue
            if w in ("-g", "-w"):
                opts.append(w)
            elif w.startswith("-I") and len(w) > 2:
                opts += ["-I", w[2:]]
            elif w == "-I" and i + 1 < len(words):
                opts += ["-I", words[i + 1]]
                i += 2
                continue
            elif w.startswith("-G") and len(w) > 2:
                opts += ["-G", w[2:]]
            elif w == "-G" and i + 1 < len(words):
                opts += ["-G", words[i + 1]]
                i += 2
                continue
            elif w.endswith(".stp") and not seen_script:
                seen_script = True
            elif seen_script:
                args.append(w)
            # other stap options (--all-modules, -u, -k ...) are dropped
            i += 1
        return opts, args
    return [], []


def first_error(text: str) -> str:
    for line in text.splitlines():
        if "error" in line.lower():
            return line.strip()
    for line in text.splitlines():
        if line.strip():
            return line.strip()
    return ""


def cause(line: str) -> str:
    """An error line without its position and the names in it."""
    line = re.sub(r"^\S+:\d+:\d+: ", "", line)
    line = re.sub(r"'[^']*'", "'...'", line)
    line = re.sub(r'"[^"]*"', '"..."', line)
    return line[:110]


def run(cmd, cwd, timeout):
    try:
        p = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True,
                           timeout=timeout, stdin=subprocess.DEVNULL)
        return p.returncode, p.stdout, p.stderr
    except subprocess.TimeoutExpired as e:
        out = e.stdout.decode(errors="replace") if isinstance(e.stdout, bytes) else (e.stdout or "")
        return -1, out, "timed out"


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("checkout", type=Path)
    ap.add_argument("--bin", type=Path, default=ROOT / "target/release/stapxx-rs")
    ap.add_argument("--run-seconds", type=int, default=2)
    ap.add_argument("--only", nargs="*", default=None)
    ap.add_argument("--out", type=Path)
    a = ap.parse_args()
    if os.geteuid() != 0:
        sys.exit("run as root (uprobes and BPF)")
    base = a.checkout.resolve() / "testsuite" / "systemtap.examples"
    scripts = sorted(p for p in base.rglob("*.stp") if "/tapset/" not in str(p))
    if a.only:
        scripts = [s for s in scripts if any(o in str(s) for o in a.only)]
    binary = str(a.bin.resolve())
    rows = []
    for s in scripts:
        rel = s.relative_to(base)
        opts, args = install_args(s.with_suffix(".meta"), s.name)
        # Everything but -c goes to every pass; -c only to the run.
        passthrough = [o for k, o in enumerate(opts)
                       if o != "-c" and (k == 0 or opts[k - 1] != "-c")]
        command = [o for k, o in enumerate(opts)
                   if o == "-c" or (k > 0 and opts[k - 1] == "-c")]
        common = [*passthrough, s.name, *args]
        reached, why, lines = "-", "", 0
        code, out, err = run([binary, "-p2", *common], s.parent, 120)
        if code != 0:
            why = first_error(err)
        else:
            reached = "2"
            code, out, err = run([binary, "-p4", *common], s.parent, 180)
            if code != 0:
                why = first_error(err)
            else:
                reached = "4"
                cmd = [binary, "-T", str(a.run_seconds), *command, *common]
                code, out, err = run(cmd, s.parent, a.run_seconds + 120)
                lines = len(out.splitlines())
                if code == 0:
                    reached = "5"
                else:
                    why = first_error(err)
        rows.append((str(rel), " ".join(args)[:60], reached, lines, why))
        print(f"{rel}: {reached} {why[:150]}", file=sys.stderr)
    text = render(rows)
    if a.out:
        a.out.write_text(text)
    else:
        sys.stdout.write(text)


def render(rows):
    o = ["| script | arguments | last pass | output lines | first error |",
         "|---|---|---|---|---|"]
    for r in rows:
        o.append("| " + " | ".join(str(x).replace("|", "\\|") for x in r) + " |")
    n = collections.Counter(r[2] for r in rows)
    o += ["", f"{len(rows)} scripts: ran to the end {n['5']}, loaded but the run failed {n['4']}, "
          f"resolved but not loaded {n['2']}, not resolved {n['-']}.", "",
          "| failures | cause |", "|---|---|"]
    causes = collections.Counter(cause(r[4]) for r in rows if r[2] != "5")
    for c, k in causes.most_common():
        o.append(f"| {k} | {c.replace('|', '/')} |")
    return "\n".join(o) + "\n"


if __name__ == "__main__":
    main()
