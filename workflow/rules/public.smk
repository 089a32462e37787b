# NAS-Bench-201 only: the benchmark's networks timed on each measured target and ranked against
# the public latencies of the same networks on 21 devices (lenna.timing.public).


rule measure_public:
    input:
        table=cfg.public_table_path(config) if "public_check" in config else [],
        code=code_inputs("measure_public.py"),
    output:
        protected("results/public/{target}/measured.parquet"),
    log:
        "logs/measure_public/{target}.log",
    cache: CACHE
    conda:
        "../../envs/timing.yaml"
    threads: measure_threads
    resources:
        **device_resources(),
    params:
        check={k: v for k, v in config.get("public_check", {}).items() if k != "table"},
        target=target_params,
        protocol=config["measurement"],
    script:
        "../scripts/measure_public.py"


rule public_rank:
    input:
        measured="results/public/{target}/measured.parquet",
        table=cfg.public_table_path(config) if "public_check" in config else [],
        code=code_inputs("public_rank.py"),
    output:
        csv="results/public/{target}/rank.csv",
        html=report(
            "results/public/{target}/rank.html",
            caption="../report/public_rank.rst",
            category="Public devices",
            labels={"target": "{target}", "figure": "rank agreement"},
        ),
    log:
        "logs/public_rank/{target}.log",
    conda:
        "../../envs/report.yaml"
    script:
        "../scripts/public_rank.py"
