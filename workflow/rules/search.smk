# Latency-aware DARTS (lenna.search): search, train the found network from scratch, time the
# found networks of a predictor's sweep together in one job (as the cells and the network
# stage's networks are timed), and put accuracy against measured latency on a Pareto front.
RUN = "results/search/{target}/{model}/lambda-{lam}/seed-{seed}"
RUN_LABELS = {
    "target": "{target}",
    "model": "{model}",
    "lambda": "{lam}",
    "seed": "{seed}",
}


rule darts_search:
    input:
        model="results/predictors/{target}/{model}/model.json",
        weights="results/predictors/{target}/{model}/weights.npz",
        network=network_model_file,
        code=code_inputs("darts_search.py"),
    output:
        genotype=f"{RUN}/genotype.json",
        history=f"{RUN}/history.parquet",
        summary=f"{RUN}/summary.json",
    log:
        "logs/darts_search/{target}/{model}/lambda-{lam}/seed-{seed}.log",
    benchmark:
        "results/benchmarks/darts_search/{target}/{model}/lambda-{lam}/seed-{seed}.tsv"
    conda:
        "../../envs/search.yaml"
    threads: config["search"].get("threads", 1)
    resources:
        **compute_resources("search"),
    params:
        settings=search_params(),
        lam=lambda wildcards: float(wildcards.lam),
        seed=lambda wildcards: int(wildcards.seed),
        data=search_data(),
        search_space=config["search_space"],
        macro=network_macro("search"),
        batch_size=target_batch_size,
    script:
        "../scripts/darts_search.py"


rule train_final:
    input:
        genotype=f"{RUN}/genotype.json",
        code=code_inputs("train_final.py"),
    output:
        metrics=f"{RUN}/final/metrics.json",
        history=f"{RUN}/final/history.parquet",
    log:
        "logs/train_final/{target}/{model}/lambda-{lam}/seed-{seed}.log",
    benchmark:
        "results/benchmarks/train_final/{target}/{model}/lambda-{lam}/seed-{seed}.tsv"
    conda:
        "../../envs/search.yaml"
    threads: config["train_final"].get("threads", 1)
    resources:
        **compute_resources("train_final"),
    params:
        settings={
            k: v
            for k, v in config["train_final"].items()
            if k not in ("threads", "device")
        },
        seed=lambda wildcards: int(wildcards.seed),
        data=config["data"],
        macro=network_macro("final"),
    script:
        "../scripts/train_final.py"


rule measure_final:
    input:
        genotypes=sweep_files("genotype.json"),
        model="results/predictors/{target}/{model}/model.json",
        weights="results/predictors/{target}/{model}/weights.npz",
        network="results/predictors/{target}/{model}/network.json",
        cells="results/datasets/{target}/summary.json",
        networks="results/networks/{target}/networks.parquet",
        code=code_inputs("measure_final.py"),
    output:
        sweep_files("final/latency.json"),
    log:
        "logs/measure_final/{target}/{model}.log",
    benchmark:
        "results/benchmarks/measure_final/{target}/{model}.tsv"
    wildcard_constraints:
        target="|".join(MEASURED) or "^$",
    conda:
        "../../envs/search.yaml"
    threads: measure_threads
    resources:
        **device_resources(),
    params:
        macro=network_macro("final"),
        target=target_params,
        protocol=config["measurement"],
        span_s=cfg.found_span_s(config),
        calibrate=config["datasets"]["calibrate"],
        search_space=config["search_space"],
        reference=cfg.reference_shape(config).as_dict(),
    script:
        "../scripts/measure_final.py"


rule pareto:
    input:
        metrics=lambda wildcards: search_runs(wildcards, "final/metrics.json"),
        latency=lambda wildcards: search_runs(wildcards, "final/latency.json"),
        summary=lambda wildcards: search_runs(wildcards, "summary.json"),
        code=code_inputs("pareto.py"),
    output:
        table="results/pareto/{target}/pareto.csv",
        html=report(
            "results/pareto/{target}/pareto.html",
            caption="../report/pareto_table.rst",
            category="Pareto",
            subcategory="{target}",
            labels={"target": "{target}", "figure": "Pareto table"},
        ),
        summary="results/pareto/{target}/summary.json",
    log:
        "logs/pareto/{target}.log",
    conda:
        "../../envs/search.yaml"
    script:
        "../scripts/pareto.py"
