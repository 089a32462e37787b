# Adaptive sampling (config `sampling.adaptive`; lenna.adaptive): after the random specs, each
# round's checkpoint fits the MLP on the labels so far and chooses the next batch from a pool of
# candidates, or stops (validation target reached, timing budget spent, pool exhausted). The
# merge takes the rounds timed before the first stop (`timed_rounds`).


rule sample_pool:
    input:
        code=code_inputs("sample_pool.py"),
    output:
        "results/specs/pool.parquet",
    log:
        "logs/sample_pool.log",
    conda:
        "../../envs/timing.yaml"
    params:
        pool=pool_params(),
        split=config["datasets"]["split"],
        search_space=config["search_space"],
        macro=macro_ranges(),
        sampling=sampler_params(),
    script:
        "../scripts/sample_pool.py"


checkpoint choose_specs:
    input:
        pool="results/specs/pool.parquet",
        specs=lambda wildcards: spec_shards()
        + round_specs(wildcards.target, int(wildcards.round)),
        latency=lambda wildcards: latency_shards(wildcards)
        + round_latency(wildcards.target, int(wildcards.round)),
        code=code_inputs("choose_specs.py"),
    output:
        specs="results/specs/{target}/round-{round}.parquet",
        decision="results/adaptive/{target}/round-{round}.json",
    log:
        "logs/choose_specs/{target}/round-{round}.log",
    benchmark:
        "results/benchmarks/choose_specs/{target}/round-{round}.tsv"
    conda:
        "../../envs/predictors.yaml"
    params:
        adaptive=config["sampling"].get("adaptive", {}),
        datasets={
            k: config["datasets"][k] for k in ("split", "calibrate", "label_quality")
        },
        mlp=config["predictors"]["mlp"],
        seed=config["sampling"]["seed"],
    script:
        "../scripts/choose_specs.py"


rule measure_round:
    input:
        specs="results/specs/{target}/round-{round}.parquet",
        code=code_inputs("measure_latency.py"),
    output:
        protected("results/latency/{target}/round-{round}.parquet"),
    log:
        "logs/measure_latency/{target}/round-{round}.log",
    cache: CACHE
    conda:
        "../../envs/timing.yaml"
    threads: measure_threads
    resources:
        **device_resources(),
    params:
        target=target_params,
        protocol=config["measurement"],
        reference=cfg.reference_shape(config).as_dict(),
    script:
        "../scripts/measure_latency.py"
