# Devices we cannot time (lenna.tables, lenna.predictors.transfer): whole-network latency tables
# of NAS-Bench-201 architectures as targets, the few-shot predictor of a device from a few of its
# labels and the table's other devices, and its leave-one-device-out evaluation.


rule import_device_table:
    input:
        table=lambda wildcards: TABLED[wildcards.target]["path"],
        code=code_inputs("import_device_table.py"),
    output:
        table="results/datasets/{target}/latency.parquet",
        summary="results/datasets/{target}/summary.json",
    log:
        "logs/import_device_table/{target}.log",
    wildcard_constraints:
        target="|".join(TABLED) or "^$",
    conda:
        "../../envs/data.yaml"
    params:
        device=table_device,
    script:
        "../scripts/import_device_table.py"


rule train_few_shot:
    input:
        train="results/datasets/{target}/train.parquet",
        table=lambda wildcards: TABLED[wildcards.target]["path"],
        sources=few_shot_sources,
        code=code_inputs("train_few_shot.py"),
    output:
        model="results/predictors/{target}/few_shot/model.json",
        weights="results/predictors/{target}/few_shot/weights.npz",
    log:
        "logs/train_few_shot/{target}.log",
    wildcard_constraints:
        target="|".join(TABLED) or "^$",
    cache: CACHE
    conda:
        "../../envs/predictors.yaml"
    params:
        device=table_device,
    script:
        "../scripts/train_few_shot.py"


rule table_latency:
    input:
        genotype=f"{RUN}/genotype.json",
        model="results/predictors/{target}/{model}/model.json",
        weights="results/predictors/{target}/{model}/weights.npz",
        table=lambda wildcards: TABLED[wildcards.target]["path"],
        code=code_inputs("table_latency.py"),
    output:
        f"{RUN}/final/latency.json",
    log:
        "logs/table_latency/{target}/{model}/lambda-{lam}/seed-{seed}.log",
    wildcard_constraints:
        target="|".join(TABLED) or "^$",
    conda:
        "../../envs/search.yaml"
    params:
        device=table_device,
    script:
        "../scripts/table_latency.py"


rule transfer_device:
    input:
        table=transfer_table_path,
        code=code_inputs("transfer_device.py"),
    output:
        "results/transfer/{table}/devices/{device}.csv",
    log:
        "logs/transfer_device/{table}/{device}.log",
    benchmark:
        "results/benchmarks/transfer_device/{table}/{device}.tsv"
    conda:
        "../../envs/predictors.yaml"
    params:
        settings=config.get("transfer", {}),
        protocol=transfer_protocol,
    script:
        "../scripts/transfer_device.py"


rule transfer_family:
    input:
        table=transfer_table_path,
        code=code_inputs("transfer_device.py"),
    output:
        "results/transfer/{table}/families/{family}.csv",
    log:
        "logs/transfer_family/{table}/{family}.log",
    benchmark:
        "results/benchmarks/transfer_family/{table}/{family}.tsv"
    conda:
        "../../envs/predictors.yaml"
    params:
        settings=config.get("transfer", {}),
        protocol=transfer_protocol,
    script:
        "../scripts/transfer_device.py"


rule transfer_table:
    input:
        devices=expand(
            "results/transfer/{{table}}/devices/{device}.csv", device=TRANSFER_DEVICES
        ),
        families=expand(
            "results/transfer/{{table}}/families/{family}.csv",
            family=TRANSFER_FAMILIES,
        ),
        table=transfer_table_path,
        code=code_inputs("transfer_table.py"),
    output:
        loo="results/transfer/{table}/loo.csv",
        summary="results/transfer/{table}/summary.csv",
        families="results/transfer/{table}/families.csv",
        html=report(
            "results/transfer/{table}/summary.html",
            caption="../report/transfer.rst",
            category="Transfer",
            subcategory="{table}",
            labels={"table": "{table}", "figure": "leave-one-device-out table"},
        ),
        figure=report(
            "results/transfer/{table}/loo.svg",
            caption="../report/transfer.rst",
            category="Transfer",
            subcategory="{table}",
            labels={"table": "{table}", "figure": "leave-one-device-out figure"},
        ),
    log:
        "logs/transfer_table/{table}.log",
    conda:
        "../../envs/report.yaml"
    params:
        protocol=transfer_protocol,
    script:
        "../scripts/transfer_table.py"
