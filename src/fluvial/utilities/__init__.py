"""``prefect.utilities``'s import paths that user code writes (``annotations``)."""
