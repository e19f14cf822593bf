"""Write every stage's code dependencies in ``dvc.yaml`` from its import closure, and the
sections of shared defaults its parameters read.

    python scripts/dvc_deps.py           # rewrite the lists (formatting and comments kept)
    python scripts/dvc_deps.py --check   # list differences, exit 1 if any

A stage depends on exactly the source files its ``python -m stages.<name>`` command runs
(``fourreal.running.provenance.import_closure``); data dependencies are left as they are, after the code.
A stage whose parameters hold an optimizer block also depends on ``optim_defaults``, the
section that block takes its other keys from (``fourreal.running.params.missing_shared_params``).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from ruamel.yaml import YAML

from fourreal.formats.files import atomic_path
from fourreal.running.params import missing_shared_params
from fourreal.running.provenance import REPO, is_code_dep, stage_code_deps


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--check", action="store_true", help="only report differences (exit 1 if any)")
    parser.add_argument("--dvc-yaml", default=str(REPO / "dvc.yaml"))
    args = parser.parse_args()
    yaml = YAML()
    yaml.indent(mapping=2, sequence=4, offset=2)
    yaml.width = 4096
    path = Path(args.dvc_yaml)
    doc = yaml.load(path.read_text())
    wrong = {name: pair for name, pair in stage_code_deps(doc["stages"], path.parent).items() if pair[0] != pair[1]}
    shared = missing_shared_params(doc["stages"])
    for name, (declared, closure) in wrong.items():
        print(f"{name}: missing {sorted(set(closure) - set(declared))}, surplus {sorted(set(declared) - set(closure))}")
    for name, sections in shared.items():
        print(f"{name}: params missing {sections}")
    if args.check:
        return 1 if wrong or shared else 0
    for name, (_, closure) in wrong.items():
        body = doc["stages"][name].get("do", doc["stages"][name])
        data = [d for d in body["deps"] if not is_code_dep(str(d))]
        body["deps"].clear()
        body["deps"].extend([*closure, *data])
    for name, sections in shared.items():
        doc["stages"][name].get("do", doc["stages"][name])["params"].extend(sections)
    with atomic_path(path) as tmp:
        with open(tmp, "w") as f:
            yaml.dump(doc, f)
    print(f"{len(set(wrong) | set(shared))} stage(s) updated in {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
