"""Blocks: typed, named configuration and credentials stored in the run record.

``from fluvial.blocks.core import Block`` (also ``fluvial.blocks.Block``), the
built-ins in :mod:`fluvial.blocks.system` (``Secret``, ``JSON``, ``String``,
``DateTime``), :mod:`fluvial.blocks.webhook` and :mod:`fluvial.filesystems`
(``LocalFileSystem``, ``RemoteFileSystem``). Secret fields are encrypted with a key
that is never in the database (:mod:`fluvial.blocks._keys`).
"""

from fluvial.blocks.core import Block

__all__ = ["Block"]
