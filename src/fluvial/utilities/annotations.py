"""``prefect.utilities.annotations``: the argument annotations of ``fluvial.annotations``
(its short name), re-exported whole."""

from fluvial.annotations import *  # noqa: F403
from fluvial.annotations import __all__ as __all__
