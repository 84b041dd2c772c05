"""What every command shares: the lazily loaded runtime, progress output, timestamps, and
the warehouse opened read-only."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import click

from core.settings import ConfigError, Runtime, load_runtime

if TYPE_CHECKING:
    import pandas as pd

    from core.warehouse import Warehouse


class Obj:
    """The click context object: the config path given, the runtime read on first use."""

    def __init__(self, config: Path | None) -> None:
        self.config = config
        self._runtime: Runtime | None = None

    @property
    def runtime(self) -> Runtime:
        """The runtime, read on first use; a bad config file becomes a ClickException."""
        if self._runtime is None:
            try:
                self._runtime = load_runtime(self.config)
            except ConfigError as err:
                raise click.ClickException(str(err)) from None
        return self._runtime


def say(msg: str) -> None:
    """Progress and notes go to standard error, results to standard output."""
    click.echo(msg, err=True)


def open_warehouse(obj: Obj) -> Warehouse:
    """The warehouse, read-only; a missing one is a clear error."""
    from core.warehouse import Warehouse

    wh = Warehouse(obj.runtime.warehouse_path, read_only=True)
    try:
        wh.open()
    except FileNotFoundError as err:
        raise click.ClickException(str(err)) from None
    return wh


def timestamp(value: str | None, hint: str) -> pd.Timestamp | None:
    """An ISO-8601 option value as naive UTC; None stays None."""
    from core.timestamps import to_utc_naive

    if value is None:
        return None
    try:
        return to_utc_naive(value)
    except ValueError:
        raise click.BadParameter(f"{value!r} is not an ISO-8601 timestamp",
                                 param_hint=hint) from None


def as_of_or_default(value: str | None, wh_path: Path) -> pd.Timestamp:
    """--as-of, or just after the latest data (`core.timestamps.default_as_of`, as the
    service does)."""
    from core.timestamps import default_as_of
    from core.warehouse import Warehouse

    ts = timestamp(value, "--as-of")
    if ts is not None:
        return ts
    with Warehouse(wh_path, read_only=True) as wh:
        return default_as_of(wh.con)


def report_rejected(counts: dict[str, int], where: str | None) -> None:
    """Print the rows a Spark job kept aside, by reason, and where they are."""
    if not counts:
        return
    click.echo(f"{sum(counts.values()):,} rows kept aside (not used) -> {where}")
    for reason, n in sorted(counts.items(), key=lambda kv: -kv[1]):
        click.echo(f"  {n:,}  {reason}")
