"""Methods that use curvature or the objective's value: line searches, L-BFGS, Newton,
Polyak steps, and the ``projected`` combinator for constrained problems."""
