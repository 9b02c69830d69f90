"""Data path: ROOT files → awkward arrays → feature groups → normalised, padded batches."""
