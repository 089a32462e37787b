rule measure_latency:
    input:
        specs="results/specs/shard-{shard}.parquet",
        code=code_inputs("measure_latency.py"),
    output:
        protected("results/latency/{target}/shard-{shard}.parquet"),
    log:
        "logs/measure_latency/{target}/shard-{shard}.log",
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
