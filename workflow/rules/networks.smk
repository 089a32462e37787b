rule measure_networks:
    input:
        code=pkg(
            "networks.py",
            "measure.py",
            "hardware.py",
            "genotype.py",
            "network.py",
            "cell.py",
            "ops.py",
            "lut.py",
        ),
    output:
        protected("results/networks/{target}/measured.parquet"),
    log:
        "logs/measure_networks/{target}.log",
    cache: CACHE
    conda:
        "../../envs/torch.yaml"
    threads: measure_threads
    resources:
        **device_resources(),
    params:
        check=config["check_networks"],
        search_space=config["search_space"],
        macro=config["macro"],
        target=target_params,
        protocol=config["measurement"],
    script:
        "../scripts/measure_networks.py"


rule check_networks:
    input:
        measured="results/networks/{target}/measured.parquet",
        model="results/predictors/{target}/{model}/model.json",
        weights="results/predictors/{target}/{model}/weights.npz",
        code=pkg("networks.py", "predictor.py", "metrics.py", "plots.py"),
    output:
        predictions="results/networks/{target}/{model}/predictions.parquet",
        metrics="results/networks/{target}/{model}/metrics.json",
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
        "logs/check_networks/{target}/{model}.log",
    conda:
        "../../envs/torch.yaml"
    script:
        "../scripts/check_networks.py"
