"""The glue every workflow script shares: its log goes to its rule's log file.

Scripts under workflow/scripts are thin adapters: they read their rule's inputs and params, call
the package and write the outputs. Standard library only, so that importing it adds no code input
that could re-run a stage; a timing job's target and device come from
`lenna.timing.devices.timing_job`, which only the jobs that use a device import.
"""

from __future__ import annotations

import atexit
import gc
import logging
import sys


def log_to_rule(snakemake) -> logging.Logger:
    """Send this job's log records, warnings and uncaught errors to the rule's log file."""
    logging.basicConfig(
        filename=snakemake.log[0], level=logging.INFO, format="%(asctime)s %(message)s", force=True
    )
    logging.captureWarnings(True)
    logger = logging.getLogger(snakemake.rule)

    def log_uncaught(kind, error, trace):
        logger.error("job failed", exc_info=(kind, error, trace))
        sys.__excepthook__(kind, error, trace)

    sys.excepthook = log_uncaught
    # What the script imported lives until the job ends: frozen, the collector no longer walks it,
    # neither in the job's collections nor in the full one at exit, which took half a second of
    # every job that imports torch (docs/development.md, "How long"). Exit codes are unchanged.
    gc.freeze()
    atexit.register(gc.freeze)
    return logger
