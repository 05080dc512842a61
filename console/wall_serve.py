"""`tafang wall --serve`: the wall display in a browser, through textual-serve.

textual-serve runs one command per browser session (a subprocess speaking its web driver
protocol over stdin/stdout) and relays it over a WebSocket. Ours is `python -m tafang wall`;
the store and the deployment reach it through TAFANG_DB / TAFANG_CONFIG in its environment
(not on its command line, where a PostgreSQL password would show in `ps`). The wall opens
the store read-only, so a browser session can never write.

Offline: textual-serve's page asks Google Fonts for Roboto Mono, which a command centre's
network (and this project's machines) cannot reach. The page is served from a copy of its
template with that link replaced by an @font-face on the Roboto Mono that textual-serve
ships in its own static folder; everything else (textual.js, xterm.css) is local already.
"""

from __future__ import annotations

import re
from importlib.resources import files

GOOGLE_FONTS = re.compile(r"<link[^>]*fonts\.googleapis\.com[^>]*>", re.DOTALL)
LOCAL_FONT = """<link rel="preload" as="font" type="font/ttf" crossorigin
      href="{{ config.static.url }}fonts/RobotoMono-VariableFont_wght.ttf" />
    <style>
      @font-face {
        font-family: "Roboto Mono";
        src: url("{{ config.static.url }}fonts/RobotoMono-VariableFont_wght.ttf")
          format("truetype");
        font-weight: 100 700;
      }
    </style>"""


def offline_index() -> str:
    """textual-serve's page template with the web font taken from its own static folder."""
    page = files("textual_serve").joinpath("templates", "app_index.html").read_text("utf-8")
    return GOOGLE_FONTS.sub(lambda _m: LOCAL_FONT, page)


def serve_wall(command: str, *, host: str, port: int, title: str) -> int:
    """Serve `command` (the wall) to browsers on host:port until interrupted; exit code 0."""
    import aiohttp_jinja2
    import jinja2
    from aiohttp import web
    from textual_serve.server import Server

    class OfflineServer(Server):
        """textual-serve's server with the offline page template."""

        async def _make_app(self) -> web.Application:
            app = await super()._make_app()
            aiohttp_jinja2.setup(app, loader=jinja2.DictLoader({"app_index.html": offline_index()}))
            return app

        async def handle_index(self, request: web.Request) -> web.StreamResponse:
            # The page's script and WebSocket URLs name the host the browser asked for, so
            # `--host 0.0.0.0` works from another machine (textual-serve would write 0.0.0.0).
            self.public_url = f"{request.scheme}://{request.host}"
            return await super().handle_index(request)

    OfflineServer(command, host=host, port=port, title=title).serve()
    return 0
