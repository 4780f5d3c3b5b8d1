"""Pure routing decisions: which deployments to try, in what order, and whether to retry.

No I/O and no imports from the other packages: inputs are plain values (candidates, observed
statistics, an injected clock), outputs are rankings and plans. The one import from `providers` below
is import plumbing: it picks the compiled copies of these modules when they are built (see
`providers.native`).
"""

from providers.native import overlay

overlay(__name__, __path__)
