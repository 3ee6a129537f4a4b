"""`python -m ingest PATH...`: the same as `newsdesk ingest PATH...`."""

import sys

from newsdesk.cli import main

main(["ingest", *sys.argv[1:]], prog_name="python -m ingest")
