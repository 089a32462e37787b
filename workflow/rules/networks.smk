# Whole networks as data (lenna.timing.networks) and the network model of every predictor
# (lenna.predictors.composition): what a network spends beyond the sum of its cells.


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
        networks=config["networks"],
        search_space=config["search_space"],
        macro=config["macro"],
        target=target_params,
        protocol=config["measurement"],
        reference=cfg.reference_shape(config).as_dict(),
    script:
        "../scripts/measure_networks.py"


rule merge_networks:
    input:
        measured="results/networks/{target}/measured.parquet",
        summary="results/datasets/{target}/summary.json",
        code=code_inputs("merge_networks.py"),
    output:
        table="results/networks/{target}/networks.parquet",
        summary="results/networks/{target}/summary.json",
    log:
        "logs/merge_networks/{target}.log",
    conda:
        "../../envs/predictors.yaml"
    params:
        calibrate=config["datasets"]["calibrate"],
        split=config["datasets"]["split"],
        search_space=config["search_space"],
    script:
        "../scripts/merge_networks.py"


rule network_model:
    input:
        networks="results/networks/{target}/networks.parquet",
        model="results/predictors/{target}/{model}/model.json",
        weights="results/predictors/{target}/{model}/weights.npz",
        code=code_inputs("network_model.py"),
    output:
        model="results/predictors/{target}/{model}/network.json",
        predictions="results/networks/{target}/{model}/predictions.parquet",
        metrics="results/networks/{target}/{model}/metrics.json",
    log:
        "logs/network_model/{target}/{model}.log",
    conda:
        "../../envs/predictors.yaml"
    script:
        "../scripts/network_model.py"
