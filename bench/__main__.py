"""``python -m bench [--quick] [--only ...] [--repeats N]``: see ``bench/run.py``."""

from bench.run import main

main()
