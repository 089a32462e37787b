rule measure_latency:
    input:
        specs="results/specs/shard-{shard}.parquet",
        code=pkg("measure.py", "cell.py", "ops.py", "specs.py"),
    output:
        protected("results/latency/{target}/shard-{shard}.parquet"),
    log:
        "logs/measure_latency/{target}/shard-{shard}.log",
    benchmark:
        "benchmarks/measure_latency/{target}/shard-{shard}.tsv"
    params:
        target=target_params,
        protocol=config["measurement"],
    threads: measure_threads
    resources:
        device=shard_device,
        **device_slot_resources(),
    conda:
        "../../envs/torch.yaml"
    script:
        "../scripts/measure_latency.py"
