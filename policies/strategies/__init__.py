"""Routing strategies: one module each, one pure `rank(...) -> Ranking` function per module.

Each strategy orders the deployments that passed `policies.constraints`; it never excludes one. The
state some of them keep between requests (`WeightedState`, `SpilloverState`) is passed in by the
caller, one per logical model, and is the only thing they mutate.
"""

from providers.native import overlay

overlay(__name__, __path__)

from policies.strategies.ranking import Ranking  # noqa: E402  (after the overlay: it may be compiled)

__all__ = ["Ranking"]
