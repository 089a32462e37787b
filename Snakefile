from snakemake.utils import min_version

min_version("9.0")


configfile: "config/config.yaml"


report: "workflow/report/workflow.rst"


include: "workflow/rules/common.smk"
include: "workflow/rules/specs.smk"
include: "workflow/rules/latency.smk"
include: "workflow/rules/datasets.smk"
include: "workflow/rules/predictors.smk"
include: "workflow/rules/networks.smk"
include: "workflow/rules/search.smk"
include: "workflow/rules/report.smk"


rule all:
    input:
        all_outputs(),


onsuccess:
    build_report()
