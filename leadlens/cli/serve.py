"""Starting the BentoML service."""

from __future__ import annotations

import sys

import click

from leadlens.cli.common import Obj, say


@click.command()
@click.option("--host", default="127.0.0.1", show_default=True,
              help="Interface to bind (0.0.0.0 exposes the service to the network).")
@click.option("--port", type=click.IntRange(1, 65535), default=3000, show_default=True)
@click.pass_obj
def serve(obj: Obj, host: str, port: int) -> None:
    """Serve the @champion models over HTTP (BentoML), behind API keys."""
    import json
    import os

    from serving.guard import ApiKeyError, load_keys
    from serving.service import bentoml_overrides

    rt = obj.runtime
    try:
        load_keys()
    except ApiKeyError as err:
        raise click.ClickException(f"{err}. `make demo` writes one to "
                                   f"{rt.home / 'api-key'}") from None
    if not rt.warehouse_path.exists():
        raise click.ClickException(f"no warehouse at {rt.warehouse_path}: run `leadlens ingest`")
    env = dict(os.environ)
    env["LEADLENS_HOME"] = str(rt.home)
    env.setdefault("BENTOML_HOME", str(rt.home / "bentoml"))
    env.setdefault("BENTOML_DO_NOT_TRACK", "True")
    if rt.config_path is not None:
        env["LEADLENS_CONFIG"] = str(rt.config_path)
    # workers and the concurrency limit are BentoML's own settings: pass the config's values
    overrides = bentoml_overrides(rt)
    if env.get("BENTOML_CONFIG_OVERRIDES"):
        say("note: BENTOML_CONFIG_OVERRIDES is set; it replaces serve.workers and "
            "serve.max_concurrency")
    else:
        env["BENTOML_CONFIG_OVERRIDES"] = json.dumps(overrides)
    say(f"serving on http://{host}:{port} (models load in the background; /readyz says when)")
    args = [sys.executable, "-m", "bentoml", "serve", "serving.service:LeadLens",
            "--host", host, "--port", str(port)]
    os.execvpe(args[0], args, env)  # noqa: S606 (become `bentoml serve`: fixed argv, no shell)
