"""``python -m snakemake`` with the SLURM executor plugin checking its jobs every second.

After every status check that finds no job finished, the plugin waits 10 s longer before the
next one (up to 3 minutes): a courtesy to a busy cluster's controller. On the tests' one-node
cluster it left each wave of jobs finished long before snakemake looked (the SLURM test took
129 s, most of it waiting). This entry point resets the wait to the plugin's first interval
(`--slurm-init-seconds-before-status-checks`) after every check; everything else is the
plugin's own. A plugin without that attribute is left as it is (the test is only slower)."""

import sys

import snakemake_executor_plugin_slurm as slurm
from snakemake.cli import main

_check_active_jobs = slurm.Executor.check_active_jobs


async def check_active_jobs(self, active_jobs):
    async for job in _check_active_jobs(self, active_jobs):
        yield job
    first = getattr(self.workflow.executor_settings, "init_seconds_before_status_checks", None)
    if first is not None and hasattr(self, "next_seconds_between_status_checks"):
        self.next_seconds_between_status_checks = first


slurm.Executor.check_active_jobs = check_active_jobs

if __name__ == "__main__":
    sys.exit(main())
