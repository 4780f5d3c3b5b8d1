"""Pure routing decisions: which deployments to try, in what order, and whether to retry.

No I/O and no imports from the other packages: inputs are plain values (candidates, observed
statistics, an injected clock), outputs are rankings and plans.
"""
