# nvos: narration-based video object segmentation (ROSA) as a Snakemake workflow.
# Run the demo:      snakemake --cores 2
# One stage:         snakemake frames            (rebuild it: --forcerun frames_shard)
# Your data:         snakemake --configfile config/config.yaml my_dataset.yaml
from snakemake.utils import min_version

from nvos.workflow import start_workflow

min_version("9.0")


configfile: f"{workflow.basedir}/config/config.yaml"


# Schema, then cross-checks (methods, splits, CLIP model, SAM checkpoint, validation clips):
# a mistake ends here with one message naming the key, before any job runs.
start_workflow(config, f"{workflow.basedir}/config/schema.yaml")


report: "workflow/report/workflow.rst"


include: "workflow/rules/common.smk"
include: "workflow/rules/dataset.smk"
include: "workflow/rules/frames.smk"
include: "workflow/rules/proposals.smk"
include: "workflow/rules/phrases.smk"
include: "workflow/rules/features.smk"
include: "workflow/rules/rosa.smk"
include: "workflow/rules/sweep.smk"
include: "workflow/rules/methods.smk"
include: "workflow/rules/decode.smk"
include: "workflow/rules/segment.smk"
include: "workflow/rules/evaluate.smk"
include: "workflow/rules/report.smk"


# With evaluation splits: everything up to the report. Without (a training-only manifest, e.g.
# Ego4D or EPIC narrations): everything up to the trained checkpoints, and the skip accounting
# (and a rosa.sweep's choice, by validation VNA).
rule all:
    """Default target: the report (no evaluation splits: the checkpoints and skip accounting)."""
    default_target: True
    input:
        (
            rules.report.output
            if config["evaluate"]["splits"]
            else [
                *rules.skips.output,
                *expand(rules.train.output.checkpoint, variant=ROSA_VARIANTS),
                *([LAYOUT.sweep_selection] if is_swept(config["rosa"]) else []),
            ]
        ),
