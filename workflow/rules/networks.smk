rule measure_networks:
    input:
        code=code_inputs("measure_networks.py"),
    output:
        protected("results/networks/{target}/measured.parquet"),
    log:
        "logs/measure_networks/{target}.log",
    cache: CACHE
    conda:
        "../../envs/timing.yaml"
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
        code=code_inputs("check_networks.py"),
    output:
        predictions="results/networks/{target}/{model}/predictions.parquet",
        metrics="results/networks/{target}/{model}/metrics.json",
    log:
        "logs/check_networks/{target}/{model}.log",
    conda:
        "../../envs/predictors.yaml"
    script:
        "../scripts/check_networks.py"
