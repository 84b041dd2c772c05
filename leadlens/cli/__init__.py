"""`leadlens`: a thin command-line shell. Each command parses, calls one plain function, reports.

Commands live by area: `data` (simulate, ingest, summary), `signals` (features), `reps`,
`models` (train, promote, evaluate, backtest, models), `scoring` (score, explain,
next-steps), `serve`, `living` (refresh, monitor, history).
"""

from __future__ import annotations

from pathlib import Path

import click

from leadlens.cli import data, living, models, reps, scoring, serve, signals
from leadlens.cli.common import Obj


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.option(
    "--config",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="YAML config file (default: $LEADLENS_CONFIG, else built-in defaults, "
    "as in configs/leadlens.yaml).",
)
@click.pass_context
def main(ctx: click.Context, config: Path | None) -> None:
    """LeadLens: which leads to work and which reps need help.

    All state lives under $LEADLENS_HOME (default ./.leadlens).
    """
    ctx.obj = Obj(config)


for _command in (data.simulate, data.ingest, data.summary, signals.features, reps.reps,
                 models.train, models.promote, models.evaluate, models.backtest, models.models,
                 scoring.score, scoring.explain, scoring.next_steps, serve.serve,
                 living.refresh, living.monitor_cmd, living.history):
    main.add_command(_command)
