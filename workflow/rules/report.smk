# Figures and tables made for the report (snakemake --report), and the headline summary.


rule data_figures:
    input:
        table="results/datasets/{target}/latency.parquet",
        shards=latency_shards,
        code=pkg("figures.py"),
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
        "../../envs/search.yaml"
    script:
        "../scripts/data_figures.py"


rule search_figures:
    input:
        history=f"{RUN}/history.parquet",
        genotype=f"{RUN}/genotype.json",
        code=pkg("figures.py"),
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
        "../../envs/search.yaml"
    params:
        op_set=config["search_space"]["op_set"],
    script:
        "../scripts/search_figures.py"


rule summary:
    input:
        comparisons=expand("results/predictors/{target}/comparison.csv", target=TARGETS),
        pareto=expand("results/pareto/{target}/summary.json", target=MEASURED),
        code=pkg("summary.py"),
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
        "../../envs/search.yaml"
    params:
        targets=TARGETS,
        measured=MEASURED,
    script:
        "../scripts/summary.py"
