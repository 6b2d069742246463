# A rosa.sweep's choice (nvos.rosa.sweep): its points are ROSA variants (rules train, predict_shard,
# evaluate_method on val); this rule reads their train logs and val summaries only, never test.
from nvos.rosa.sweep import is_swept, select_by, selection_inputs, sweep_points


rule select_sweep:
    """Choose the rosa.sweep setting on val only: best val J&F, else lowest validation VNA."""
    input:
        unpack(lambda wc: selection_inputs(config, LAYOUT)),
    output:
        selection=LAYOUT.sweep_selection,
        table=LAYOUT.sweep_table,
    params:
        points=sweep_points(config["rosa"]),
        by=select_by(config),
    log:
        LAYOUT.log("select_sweep"),
    benchmark:
        LAYOUT.benchmark("select_sweep")
    script:
        "../scripts/select_sweep.py"
