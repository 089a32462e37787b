# Figures and tables made for the report (snakemake --report), and the headline summary.


rule data_figures:
    input:
        table="results/datasets/{target}/latency.parquet",
        shards=lambda wildcards: latency_shards(wildcards)
        + round_latency(wildcards.target),
        code=code_inputs("data_figures.py"),
    output:
        distribution=report(
            "results/datasets/{target}/label_distribution.svg",
            caption="../report/label_distribution.rst",
            category="Data",
            subcategory="{target}",
            labels={"target": "{target}", "figure": "label distribution"},
        ),
        dispersion=report(
            "results/datasets/{target}/label_dispersion.svg",
            caption="../report/label_dispersion.rst",
            category="Data",
            subcategory="{target}",
            labels={"target": "{target}", "figure": "label dispersion"},
        ),
        convergence=report(
            "results/datasets/{target}/convergence.svg",
            caption="../report/convergence.rst",
            category="Data",
            subcategory="{target}",
            labels={"target": "{target}", "figure": "expected-latency convergence"},
        ),
        throughput=report(
            "results/datasets/{target}/throughput.html",
            caption="../report/throughput.rst",
            category="Data",
            subcategory="{target}",
            labels={"target": "{target}", "figure": "specs per minute"},
        ),
    log:
        "logs/data_figures/{target}.log",
    conda:
        "../../envs/report.yaml"
    script:
        "../scripts/data_figures.py"


rule search_figures:
    input:
        history=f"{RUN}/history.parquet",
        genotype=f"{RUN}/genotype.json",
        code=code_inputs("search_figures.py"),
    output:
        history=report(
            f"{RUN}/history.svg",
            caption="../report/search_history.rst",
            category="Search",
            subcategory="{target}",
            labels=RUN_LABELS | {"figure": "history"},
        ),
        alphas=report(
            f"{RUN}/alphas.svg",
            caption="../report/alpha_evolution.rst",
            category="Search",
            subcategory="{target}",
            labels=RUN_LABELS | {"figure": "alphas"},
        ),
        cells=report(
            f"{RUN}/cells.svg",
            caption="../report/cells.rst",
            category="Search",
            subcategory="{target}",
            labels=RUN_LABELS | {"figure": "derived cells"},
        ),
    log:
        "logs/search_figures/{target}/{model}/lambda-{lam}/seed-{seed}.log",
    conda:
        "../../envs/report.yaml"
    params:
        op_set=config["search_space"]["op_set"],
    script:
        "../scripts/search_figures.py"


rule summary:
    input:
        comparisons=expand("results/predictors/{target}/comparison.csv", target=TARGETS),
        pareto=expand("results/pareto/{target}/summary.json", target=SEARCHED),
        public=expand(
            "results/public/{target}/rank.csv",
            target=MEASURED if "public_check" in config else [],
        ),
        datasets=expand("results/datasets/{target}/summary.json", target=TARGETS),
        code=code_inputs("summary.py"),
    output:
        markdown="results/summary.md",
        html=report(
            "results/summary.html",
            caption="../report/summary.rst",
            category="Summary",
            labels={"figure": "headline numbers"},
        ),
    log:
        "logs/summary.log",
    conda:
        "../../envs/report.yaml"
    params:
        targets=TARGETS,
        measured=SEARCHED,
        public_targets=MEASURED if "public_check" in config else [],
    script:
        "../scripts/summary.py"


rule predictor_figures:
    input:
        predictions="results/predictors/{target}/{model}/predictions.parquet",
        code=code_inputs("predictor_figures.py"),
    output:
        scatter=report(
            "results/predictors/{target}/{model}/predicted_vs_measured.svg",
            caption="../report/predicted_vs_measured.rst",
            category="Predictors",
            subcategory="{target}",
            labels={
                "target": "{target}",
                "model": "{model}",
                "figure": "predicted vs measured",
            },
        ),
        errors=report(
            "results/predictors/{target}/{model}/errors.svg",
            caption="../report/errors.rst",
            category="Predictors",
            subcategory="{target}",
            labels={
                "target": "{target}",
                "model": "{model}",
                "figure": "relative errors",
            },
        ),
    log:
        "logs/predictor_figures/{target}/{model}.log",
    conda:
        "../../envs/report.yaml"
    script:
        "../scripts/predictor_figures.py"


rule network_figure:
    input:
        predictions="results/networks/{target}/{model}/predictions.parquet",
        code=code_inputs("network_figure.py"),
    output:
        scatter=report(
            "results/networks/{target}/{model}/predicted_vs_measured.svg",
            caption="../report/networks.rst",
            category="Networks",
            subcategory="{target}",
            labels={
                "target": "{target}",
                "model": "{model}",
                "figure": "whole networks",
            },
        ),
    log:
        "logs/network_figure/{target}/{model}.log",
    conda:
        "../../envs/report.yaml"
    script:
        "../scripts/network_figure.py"


rule learning_curve_figure:
    input:
        csv="results/predictors/{target}/learning_curve.csv",
        code=code_inputs("learning_curve_figure.py"),
    output:
        svg=report(
            "results/predictors/{target}/learning_curve.svg",
            caption="../report/learning_curve.rst",
            category="Predictors",
            subcategory="{target}",
            labels={
                "target": "{target}",
                "model": "elasticnet, mlp",
                "figure": "learning curve",
            },
        ),
    log:
        "logs/learning_curve_figure/{target}.log",
    conda:
        "../../envs/report.yaml"
    script:
        "../scripts/learning_curve_figure.py"


rule rounds_figure:
    input:
        summary="results/datasets/{target}/summary.json",
        code=code_inputs("rounds_figure.py"),
    output:
        svg=report(
            "results/adaptive/{target}/rounds.svg",
            caption="../report/rounds.rst",
            category="Data",
            subcategory="{target}",
            labels={"target": "{target}", "figure": "adaptive sampling"},
        ),
    log:
        "logs/rounds_figure/{target}.log",
    conda:
        "../../envs/report.yaml"
    script:
        "../scripts/rounds_figure.py"


rule pareto_figure:
    input:
        table="results/pareto/{target}/pareto.csv",
        code=code_inputs("pareto_figure.py"),
    output:
        plot=report(
            "results/pareto/{target}/pareto.svg",
            caption="../report/pareto.rst",
            category="Pareto",
            subcategory="{target}",
            labels={"target": "{target}", "figure": "accuracy vs latency"},
        ),
    log:
        "logs/pareto_figure/{target}.log",
    conda:
        "../../envs/report.yaml"
    script:
        "../scripts/pareto_figure.py"
