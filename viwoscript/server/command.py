"""Running the server until Ctrl-C / SIGTERM (the ``viwo serve`` command lives in ``viwoscript.cli``)."""

from __future__ import annotations

import sys

import click


def run_server(sc) -> None:
    """Serve ``sc`` (a :class:`~viwoscript.server.config.ServerConfig`); prints the URL once listening."""
    import asyncio
    import logging

    from aiohttp import web

    from .app import SERVER_KEY, make_app

    # The command-line face owns the process: quiet logs unless -v.
    logging.basicConfig(level=logging.INFO if sc.verbose else logging.WARNING,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")

    async def main():
        app = make_app(sc)
        runner = web.AppRunner(app, handle_signals=True, access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, sc.host, sc.port)
        try:
            await site.start()
        except OSError as e:
            await runner.cleanup()
            click.echo(f"error: cannot listen on {sc.host}:{sc.port}: {e.strerror or e}", err=True)
            click.echo("hint: choose another --port (0 picks a free one)", err=True)
            sys.exit(2)
        if sc.port == 0:
            sc.port = site._server.sockets[0].getsockname()[1]
        executor = app[SERVER_KEY].executor
        where = executor.describe() if hasattr(executor, "describe") else f"{sc.executor} executor"
        click.echo(f"viwo serve: {where}, {executor.slots} slot(s); data in {app[SERVER_KEY].data}", err=True)
        users = sc.users
        if len(users) == 1:
            click.echo(f"open {sc.url()}")
        else:
            for user in users:
                click.echo(f"{user}: {sc.url(user)}")
        sys.stdout.flush()
        try:
            await asyncio.Event().wait()
        finally:
            await runner.cleanup()

    try:
        asyncio.run(main())
    except (KeyboardInterrupt, web.GracefulExit):
        pass
