rule sample_specs:
    input:
        code=pkg("specs.py", "cell.py", "network.py", "ops.py", "config.py"),
    output:
        "results/specs/shard-{shard}.parquet",
    log:
        "logs/sample_specs/shard-{shard}.log",
    conda:
        "../../envs/torch.yaml"
    params:
        shard=spec_shard_params,
        search_space=config["search_space"],
        macro=macro_ranges(),
        sampling={k: v for k, v in config["sampling"].items() if k != "n_specs"},
    script:
        "../scripts/sample_specs.py"
