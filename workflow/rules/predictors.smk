rule train_constant:
    input:
        train="results/datasets/{target}/train.parquet",
        normaliser="results/datasets/{target}/normaliser.json",
        code=code_inputs("train_predictor.py"),
    output:
        model="results/predictors/{target}/constant/model.json",
        weights="results/predictors/{target}/constant/weights.npz",
    log:
        "logs/train_constant/{target}.log",
    cache: CACHE
    conda:
        "../../envs/predictors.yaml"
    script:
        "../scripts/train_predictor.py"


rule train_elasticnet:
    input:
        train="results/datasets/{target}/train.parquet",
        normaliser="results/datasets/{target}/normaliser.json",
        code=code_inputs("train_predictor.py"),
    output:
        model="results/predictors/{target}/elasticnet/model.json",
        weights="results/predictors/{target}/elasticnet/weights.npz",
    log:
        "logs/train_elasticnet/{target}.log",
    cache: CACHE
    conda:
        "../../envs/predictors.yaml"
    params:
        hyper=config["predictors"]["elasticnet"],
    script:
        "../scripts/train_predictor.py"


rule train_mlp:
    input:
        train="results/datasets/{target}/train.parquet",
        val="results/datasets/{target}/val.parquet",
        normaliser="results/datasets/{target}/normaliser.json",
        code=code_inputs("train_predictor.py"),
    output:
        model="results/predictors/{target}/mlp/model.json",
        weights="results/predictors/{target}/mlp/weights.npz",
        history="results/predictors/{target}/mlp/history.parquet",
    log:
        "logs/train_mlp/{target}.log",
    cache: CACHE
    conda:
        "../../envs/predictors.yaml"
    params:
        hyper=config["predictors"]["mlp"],
    script:
        "../scripts/train_predictor.py"


rule evaluate_predictor:
    input:
        model="results/predictors/{target}/{model}/model.json",
        weights="results/predictors/{target}/{model}/weights.npz",
        test="results/datasets/{target}/test.parquet",
        code=code_inputs("evaluate_predictor.py"),
    output:
        metrics="results/predictors/{target}/{model}/metrics.json",
        predictions="results/predictors/{target}/{model}/predictions.parquet",
    log:
        "logs/evaluate_predictor/{target}/{model}.log",
    conda:
        "../../envs/predictors.yaml"
    script:
        "../scripts/evaluate_predictor.py"


rule compare_predictors:
    input:
        metrics=predictor_metrics,
        networks=network_metrics,
        code=code_inputs("compare_predictors.py"),
    output:
        csv="results/predictors/{target}/comparison.csv",
        html=report(
            "results/predictors/{target}/comparison.html",
            caption="../report/comparison.rst",
            category="Predictors",
            subcategory="{target}",
            labels={
                "target": "{target}",
                "model": "all",
                "figure": "comparison table",
            },
        ),
    log:
        "logs/compare_predictors/{target}.log",
    conda:
        "../../envs/predictors.yaml"
    params:
        models=config["predictors"]["models"],
    script:
        "../scripts/compare_predictors.py"


rule measure_lut:
    input:
        code=code_inputs("measure_lut.py"),
    output:
        protected("results/lut/{target}/lut.parquet"),
    log:
        "logs/measure_lut/{target}.log",
    cache: CACHE
    conda:
        "../../envs/timing.yaml"
    threads: measure_threads
    resources:
        **device_resources(),
    params:
        search_space=config["search_space"],
        macro=macro_ranges(),
        target=target_params,
        protocol=config["measurement"],
    script:
        "../scripts/measure_lut.py"


rule train_lut:
    input:
        lut="results/lut/{target}/lut.parquet",
        train="results/datasets/{target}/train.parquet",
        table="results/datasets/{target}/latency.parquet",
        normaliser="results/datasets/{target}/normaliser.json",
        code=code_inputs("train_predictor.py"),
    output:
        model="results/predictors/{target}/lut/model.json",
        weights="results/predictors/{target}/lut/weights.npz",
    log:
        "logs/train_lut/{target}.log",
    cache: CACHE
    conda:
        "../../envs/predictors.yaml"
    params:
        macro=macro_ranges(),
        batch_size=target_batch_size,
    script:
        "../scripts/train_predictor.py"


rule train_flops:
    input:
        train="results/datasets/{target}/train.parquet",
        table="results/datasets/{target}/latency.parquet",
        normaliser="results/datasets/{target}/normaliser.json",
        code=code_inputs("train_predictor.py"),
    output:
        model="results/predictors/{target}/flops/model.json",
        weights="results/predictors/{target}/flops/weights.npz",
    log:
        "logs/train_flops/{target}.log",
    cache: CACHE
    conda:
        "../../envs/predictors.yaml"
    params:
        macro=macro_ranges(),
        batch_size=target_batch_size,
    script:
        "../scripts/train_predictor.py"


rule learning_curve:
    input:
        train="results/datasets/{target}/train.parquet",
        val="results/datasets/{target}/val.parquet",
        test="results/datasets/{target}/test.parquet",
        normaliser="results/datasets/{target}/normaliser.json",
        code=code_inputs("learning_curve.py"),
    output:
        csv="results/predictors/{target}/learning_curve.csv",
    log:
        "logs/learning_curve/{target}.log",
    benchmark:
        "results/benchmarks/learning_curve/{target}.tsv"
    conda:
        "../../envs/predictors.yaml"
    params:
        fractions=config["predictors"]["learning_curve"],
        elasticnet=config["predictors"]["elasticnet"],
        mlp=config["predictors"]["mlp"],
    script:
        "../scripts/learning_curve.py"
