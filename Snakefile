from snakemake.utils import min_version

min_version("9.0")


# The default experiment, unless --configfile names others: a config given on the command line
# replaces it rather than being merged into it key by key (a DARTS key left over in a
# NAS-Bench-201 config would be a silent mistake).
if not workflow.overwrite_configfiles:

    configfile: "config/config.yaml"


report: "workflow/report/workflow.rst"


include: "workflow/rules/common.smk"
include: "workflow/rules/specs.smk"
include: "workflow/rules/adaptive.smk"
include: "workflow/rules/latency.smk"
include: "workflow/rules/datasets.smk"
include: "workflow/rules/predictors.smk"
include: "workflow/rules/networks.smk"
include: "workflow/rules/search.smk"
include: "workflow/rules/public.smk"
include: "workflow/rules/transfer.smk"
include: "workflow/rules/kit.smk"
include: "workflow/rules/report.smk"


# Light rules: under a cluster executor they run on the submitting host, not as cluster jobs.
localrules:
    all,
    sample_specs,
    sample_pool,
    merge_latency,
    import_latency,
    split_normalise,
    train_constant,
    train_flops,
    evaluate_predictor,
    compare_predictors,
    merge_networks,
    network_model,
    pareto,
    data_figures,
    search_figures,
    predictor_figures,
    network_figure,
    learning_curve_figure,
    rounds_figure,
    pareto_figure,
    public_rank,
    import_device_table,
    table_latency,
    transfer_table,
    summary,


rule all:
    input:
        all_outputs(),


onsuccess:
    say_label_quality()
    build_report()
