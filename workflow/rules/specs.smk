rule sample_specs:
    input:
        code=code_inputs("sample_specs.py"),
    output:
        "results/specs/shard-{shard}.parquet",
    log:
        "logs/sample_specs/shard-{shard}.log",
    conda:
        "../../envs/timing.yaml"
    params:
        shard=spec_shard_params,
        search_space=config["search_space"],
        macro=macro_ranges(),
        sampling=sampler_params(),
    script:
        "../scripts/sample_specs.py"
