"""``python -m bench.pg_engine [--quick] [--only SECTIONS]``: this section alone."""

from bench.pg_engine import main

main()
