"""``viwo serve``: the runtime as a server (JSON-RPC over WebSocket, jobs, files, the web UI; docs/server.md).

Only click is imported here; aiohttp and the server load when the command runs.
"""

from __future__ import annotations

import click

from ..app import CONTEXT, EXIT_USAGE, Exit, cli, guarded


@cli.command(context_settings=CONTEXT)
@click.option("--host", default=None, metavar="ADDR",
              help="Address to listen on (default 127.0.0.1; another address needs an explicit token).")
@click.option("--port", type=click.IntRange(0, 65535), default=None, metavar="N",
              help="Port (default 8080; 0 picks a free one).")
@click.option("--token", default=None, metavar="T",
              help="The access token (default: [server] token/users in viwo.toml, else a fresh random one).")
@click.option("--config", "config_path", type=click.Path(dir_okay=False), metavar="FILE",
              help="Configuration file (default: ./viwo.toml, else the user config dir).")
@click.option("--executor", type=click.Choice(["local", "ray"]), default=None,
              help="Where jobs run: local (default: this process's worker threads) or ray (Ray workers, one per "
                   "GPU or CPU slot; [executor] in viwo.toml configures it, see docs/distributed.md).")
@click.option("--data", "data_dir", type=click.Path(file_okay=False), default=None, metavar="DIR",
              help="Folder for jobs, uploads and each user's store (default: the user data folder).")
@click.option("--slots", type=click.IntRange(1, 1024), default=None, metavar="N",
              help="Jobs run at the same time (default 1).")
@click.option("-v", "--verbose", is_flag=True, help="Log one line per job (default: start-up lines and errors).")
@guarded
def serve(host, port, token, config_path, executor, data_dir, slots, verbose):
    """Serve the runtime: JSON-RPC over a WebSocket at /rpc, files at /blobs, the web UI at /.

    Prints the URL to open, with its token (http://127.0.0.1:8080/?token=…). Every route needs the
    token. Stop with Ctrl-C; queued jobs run at the next start. See docs/server.md.
    """
    from pathlib import Path

    from ...config import load_config

    try:
        import aiohttp  # noqa: F401
    except ImportError:
        click.echo("error: `viwo serve` needs aiohttp: pip install aiohttp (or reinstall viwoscript)", err=True)
        raise Exit(EXIT_USAGE) from None
    from ...server.command import run_server
    from ...server.config import server_config

    cfg = load_config(config_path)
    sc = server_config(cfg, host=host, port=port, token=token, executor=executor, verbose=verbose)
    if data_dir:
        sc.data = Path(data_dir).resolve()
    if slots:
        sc.slots = slots
    sc.check_exposure()
    kw = cfg.runtime_kwargs()
    if "capabilities" in kw:
        sc.runtime_kwargs["capabilities"] = kw["capabilities"]
    run_server(sc)
