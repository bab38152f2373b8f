"""Check that the requirements of some installed distributions, and of theirs, are satisfied.

    python docker/check_requirements.py "fruits-pipeline[airflow]" apache-airflow-providers-fab

A ``pip check`` limited to what the given distributions need, extras and environment markers
included. The Dockerfile runs it after installing the project: the official Airflow image ships
providers the pipeline never loads, and a conflict between one of those and constraints.txt
must not fail the build, while a conflict in anything the pipeline does load must.

Exit status 0 when everything needed is installed at a fitting version, else 1 with the list.
Standard library and ``packaging`` only (a dependency of Airflow).
"""

from __future__ import annotations

import sys
from importlib import metadata

from packaging.requirements import InvalidRequirement, Requirement
from packaging.utils import canonicalize_name


def problems(roots: list[str]) -> list[str]:
    """What is missing or at a version that a requirement excludes, walking from ``roots``."""
    found: list[str] = []
    seen: set[tuple[str, frozenset[str]]] = set()
    pending = [(Requirement(root), "command line") for root in roots]
    while pending:
        requirement, wanted_by = pending.pop()
        name = canonicalize_name(requirement.name)
        try:
            dist = metadata.distribution(name)
        except metadata.PackageNotFoundError:
            found.append(f"{requirement} (wanted by {wanted_by}): not installed")
            continue
        if requirement.specifier and not requirement.specifier.contains(
            dist.version, prereleases=True
        ):
            found.append(f"{requirement} (wanted by {wanted_by}): {dist.version} is installed")
        key = (name, frozenset(canonicalize_name(extra) for extra in requirement.extras))
        if key in seen:
            continue
        seen.add(key)
        label = f"{dist.metadata['Name']} {dist.version}"
        for line in dist.requires or []:
            try:
                needed = Requirement(line)
            except InvalidRequirement:
                found.append(f"{label}: unreadable requirement {line!r}")
                continue
            if needed.marker is None or any(
                needed.marker.evaluate({"extra": extra}) for extra in ("", *key[1])
            ):
                pending.append((needed, label))
    return sorted(set(found))


def main(argv: list[str]) -> int:
    if not argv:
        print(__doc__, file=sys.stderr)
        return 2
    found = problems(argv)
    for problem in found:
        print(f"broken requirement: {problem}", file=sys.stderr)
    if not found:
        print(f"requirements satisfied: {' '.join(argv)} and everything they need")
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
