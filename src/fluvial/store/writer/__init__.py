"""Committing the recorder's batches, usually in a separate writer process.

    batch      the event kinds the recorder appends; a batch turned into rows
               (:func:`~fluvial.store.writer.batch.write_events`) and committed in
               one transaction, transient failures retried (``BatchWriter``)
    process    the writer process's entry point: reads batches from its stdin,
               commits them, acknowledges each
    wire       the pipe's frames: a length and a restricted pickle

The recorder (:mod:`fluvial.store.recorder`) decides where batches are committed:
in the writer process, or in its own drain thread when none can be started.
"""
