"""The data lake infrastructure app: one stage per environment, deployed by its branch pipeline."""
