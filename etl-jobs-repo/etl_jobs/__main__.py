"""`python -m etl_jobs ...` is the `etl-jobs` command, for checkouts that are not installed."""

import sys

from etl_jobs.cli import main

sys.exit(main())
