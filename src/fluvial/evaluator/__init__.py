"""The automations evaluator: reads the event log in order, fires automations, runs actions.

    Evaluator(clock=time.time).run_once()

Workers and ``serve()`` run one each poll; ``fluvial automation evaluate`` runs one in
the foreground. See :mod:`fluvial.evaluator._evaluator` for how a firing is decided once.
"""

from fluvial.evaluator._evaluator import Evaluator
from fluvial.evaluator._execute import execute

__all__ = ["Evaluator", "execute"]
