"""``python -m fluvial.server``: the same as ``fluvial server start``."""

from fluvial.server.command import server_start

if __name__ == "__main__":
    server_start()
