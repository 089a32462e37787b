# A measurement kit for a device the pipeline cannot reach (lenna.kit): the NAS-Bench-201
# architectures worth timing there (labels for its few-shot predictor, checks to score it), their
# benchmark networks exported beside a standalone timing script whose table comes back as a
# device table (docs/device-tables.md, "Measurement kit").


rule kit_architectures:
    input:
        table=transfer_table_path,
        code=code_inputs("kit_architectures.py"),
    output:
        "results/kit/{table}/architectures.csv",
    log:
        "logs/kit_architectures/{table}.log",
    benchmark:
        "results/benchmarks/kit_architectures/{table}.tsv"
    wildcard_constraints:
        table=KIT.get("table", "^$"),
    conda:
        "../../envs/predictors.yaml"
    params:
        settings=kit_choice(),
        protocol=transfer_protocol,
    script:
        "../scripts/kit_architectures.py"


rule export_kit:
    input:
        architectures="results/kit/{table}/architectures.csv",
        code=code_inputs("export_kit.py"),
    output:
        directory("results/kit/{table}/kit"),
    log:
        "logs/export_kit/{table}.log",
    wildcard_constraints:
        table=KIT.get("table", "^$"),
    conda:
        "../../envs/timing.yaml"
    params:
        batch_size=KIT.get("batch_size"),
        formats=KIT.get("formats"),
        protocol=KIT.get("protocol"),
        feedback=kit_feedback(),
    script:
        "../scripts/export_kit.py"
