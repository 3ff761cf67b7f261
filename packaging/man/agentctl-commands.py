#!/usr/bin/env python3
"""Writes the COMMANDS section of agentctl(8) for help2man (--include), from the `--help` of
every subcommand, so the man page lists each command's own options and cannot drift from
the binary. Usage: agentctl-commands.py AGENTCTL OUTPUT.h2m"""
import re
import subprocess
import sys

NAME_COLUMN = 30  # CLI11's default column width


def help_text(binary, path):
    out = subprocess.run([binary, *path, "--help"], capture_output=True, text=True, check=True,
                         env={"NO_COLOR": "1", "PATH": "/usr/bin:/bin"})
    return out.stdout


def parse(text):
    """CLI11 help: description lines, "Usage: ...", then sections ("Options:", "Positionals:",
    "Subcommands:") of entries "  NAME    description" whose long names push the
    description onto the next, deeper-indented line."""
    lines = text.splitlines()
    desc, sections, current = [], {}, None
    for line in lines:
        if line.startswith("Usage:"):
            current = "usage"
            continue
        m = re.match(r"^([A-Z][A-Za-z ]*):$", line)
        if m:
            current = m.group(1)
            sections[current] = []
            continue
        if current is None:
            if line.strip():
                desc.append(line.strip())
            continue
        if current == "usage" or not line.strip():
            continue
        if line.startswith("  ") and not line.startswith("   "):
            # CLI11 pads names to column 30; a longer name puts the text on the next line.
            if len(line) > NAME_COLUMN and line[NAME_COLUMN - 1] == " ":
                sections[current].append([line[:NAME_COLUMN].strip(), line[NAME_COLUMN:].strip()])
            else:
                sections[current].append([line.strip(), ""])
        elif sections.get(current):
            last = sections[current][-1]
            last[1] = (last[1] + " " + line.strip()).strip()
    return " ".join(desc), sections


def roff(s):
    s = s.replace("\\", "\\e").replace("-", "\\-")
    return s


def positional(spec):
    name = f"\\fI{roff(spec.split()[0].upper())}\\fR"
    return name if "REQUIRED" in spec.split() else f"[{name}]"


def emit(binary, path, out):
    desc, sections = parse(help_text(binary, path))
    opts = [o for o in sections.get("Options", []) if not o[0].startswith("-h,--help")]
    pos = sections.get("Positionals", [])
    subs = sections.get("Subcommands", [])
    synopsis = " ".join(
        [f"\\fB{roff(' '.join(path))}\\fR"]
        + [f"[\\fI{roff(o[0].split()[0])}\\fR]" for o in opts]
        + [positional(p[0]) for p in pos]
        + (["\\fISUBCOMMAND\\fR"] if subs else []))
    out.append(".TP")
    out.append(synopsis)
    out.append(roff(desc))
    if opts or pos:
        out.append(".RS")
        for name, text in pos + opts:
            out.append(".TP")
            out.append(f"\\fB{roff(name)}\\fR")
            out.append(roff(text))
        out.append(".RE")
    for name, _ in subs:
        emit(binary, path + [name], out)


def main():
    binary, target = sys.argv[1], sys.argv[2]
    _, top = parse(help_text(binary, []))
    commands = [name for name, _ in top.get("Subcommands", [])]
    if not commands:
        sys.exit(f"{binary} --help lists no subcommands")
    out = ["[COMMANDS]"]
    for c in commands:
        emit(binary, [c], out)
    with open(target, "w", encoding="utf-8") as f:
        f.write("\n".join(out) + "\n")


if __name__ == "__main__":
    main()
