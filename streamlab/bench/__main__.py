"""``python -m streamlab.bench``: see :mod:`streamlab.bench`."""

from streamlab.bench import main

main()
