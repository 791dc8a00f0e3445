#!/usr/bin/env python3
"""Checks that every OWLMESH_ variable the deployment files and guide name is one the
`owlmesh` binary reads: a misspelt variable in an environment file is silently ignored by
the service, so it is caught here instead.

A file named after a service kind (`dispatcher.env.example`, `kubernetes/scraper.yaml`,
`owlmesh-archiver.service`, ...) may only use the variables of `owlmesh KIND --help`; any
other file (the guide, the namespace, the secrets) those of any command.

Usage: deploy/check-env-vars.py path/to/owlmesh [FILE_OR_FOLDER ...]
(default: deploy/ and docs/deploy.md). Exits 1 naming each unknown variable and where.
"""

import pathlib
import re
import subprocess
import sys

# The commands whose variables may appear; the services are the kinds files are named after.
SERVICE_KINDS = ["directory", "dispatcher", "scraper", "archiver", "monitoring"]
OTHER_COMMANDS = ["up", "job", "export", "services", "route", "try"]

# A name the deployment needs that is being added to the binary right now. Tolerated (with
# a warning) only while no command's --help lists it; once one does, the per-kind check
# applies to it like to any other.
PENDING = {"OWLMESH_ADVERTISE"}

VARIABLE = re.compile(r"OWLMESH_[A-Z0-9_]*[A-Z0-9]")
REPOSITORY = pathlib.Path(__file__).resolve().parent.parent
DEFAULT_PATHS = [REPOSITORY / "deploy", REPOSITORY / "docs" / "deploy.md"]


def variables_of(binary, command):
    """The OWLMESH_ variables `owlmesh COMMAND --help` names."""
    help_text = subprocess.run(
        [binary, command, "--help"], check=True, capture_output=True, text=True
    ).stdout
    return set(VARIABLE.findall(help_text))


def kind_of(path):
    """The service kind a file is named after, if any."""
    for kind in SERVICE_KINDS:
        if kind in path.name:
            return kind
    return None


def files_under(paths):
    """Every file of the paths, but this script (which names variables to check them)."""
    for path in paths:
        if path.is_dir():
            files = sorted(p for p in path.rglob("*") if p.is_file())
        else:
            files = [path]
        yield from (p for p in files if p.resolve() != pathlib.Path(__file__).resolve())


def main(arguments):
    if not arguments:
        sys.exit(__doc__)
    binary, paths = arguments[0], [pathlib.Path(p) for p in arguments[1:]] or DEFAULT_PATHS
    by_kind = {kind: variables_of(binary, kind) for kind in SERVICE_KINDS}
    known = set().union(*by_kind.values())
    for command in OTHER_COMMANDS:
        known |= variables_of(binary, command)
    pending = PENDING - known
    for name in sorted(pending):
        print(f"warning: {name} is used but no command reads it yet (tolerated while it lands)")

    unknown = []
    checked = 0
    for path in files_under(paths):
        kind = kind_of(path)
        allowed = (by_kind[kind] if kind else known) | pending
        for number, line in enumerate(path.read_text(errors="replace").splitlines(), 1):
            for name in VARIABLE.findall(line):
                checked += 1
                if name not in allowed:
                    reader = f"owlmesh {kind}" if kind else "any owlmesh command"
                    unknown.append(f"{path}:{number}: {name} is not read by {reader}")
    for problem in unknown:
        print(problem)
    if unknown:
        sys.exit(1)
    print(f"{checked} uses of OWLMESH_ variables checked against --help: all known")


if __name__ == "__main__":
    main(sys.argv[1:])
