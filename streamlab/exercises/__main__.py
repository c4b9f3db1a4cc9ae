"""``python -m streamlab.exercises build`` writes every student version; ``check`` lists stale ones."""

import sys

from streamlab.exercises.build import NOTEBOOKS, build_all, out_of_date


def main(argv: list[str]) -> int:
    if argv == ["build"]:
        for path in build_all():
            print(f"wrote {path.relative_to(NOTEBOOKS.parent)}")
        return 0
    if argv == ["check"]:
        stale = out_of_date()
        for path in stale:
            print(f"out of date: {path.relative_to(NOTEBOOKS.parent)} (run: python -m streamlab.exercises build)")
        return 1 if stale else 0
    print(__doc__)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
