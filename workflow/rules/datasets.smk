rule merge_latency:
    input:
        specs=lambda wildcards: spec_shards() + round_specs(wildcards.target),
        latency=lambda wildcards: latency_shards(wildcards)
        + round_latency(wildcards.target),
        rounds=lambda wildcards: round_decisions(wildcards.target),
        code=code_inputs("merge_latency.py"),
    output:
        table="results/datasets/{target}/latency.parquet",
        summary="results/datasets/{target}/summary.json",
    log:
        "logs/merge_latency/{target}.log",
    wildcard_constraints:
        target="|".join(MEASURED) or "^$",
    conda:
        "../../envs/data.yaml"
    params:
        calibrate=config["datasets"]["calibrate"],
        quality=config["datasets"]["label_quality"],
    script:
        "../scripts/merge_latency.py"


rule import_latency:
    input:
        table=lambda wildcards: config["external_targets"][wildcards.target]["table"],
        code=code_inputs("import_latency.py"),
    output:
        table="results/datasets/{target}/latency.parquet",
        summary="results/datasets/{target}/summary.json",
    log:
        "logs/import_latency/{target}.log",
    wildcard_constraints:
        target="|".join(IMPORTED) or "^$",
    conda:
        "../../envs/data.yaml"
    params:
        search_space=config["search_space"],
    script:
        "../scripts/import_latency.py"


rule split_normalise:
    input:
        table="results/datasets/{target}/latency.parquet",
        code=code_inputs("split_normalise.py"),
    output:
        train="results/datasets/{target}/train.parquet",
        val="results/datasets/{target}/val.parquet",
        test="results/datasets/{target}/test.parquet",
        normaliser="results/datasets/{target}/normaliser.json",
    log:
        "logs/split_normalise/{target}.log",
    conda:
        "../../envs/data.yaml"
    params:
        split=config["datasets"]["split"],
        search_space=config["search_space"],
    script:
        "../scripts/split_normalise.py"
