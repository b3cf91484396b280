"""The data pipeline: scan every file once, decode once into the image cache, split, and the
fingerprint the ledger records; ``prepare.prepare_data`` runs it for training."""
