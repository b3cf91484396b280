"""Training batches: batched augmentation on uint8 tensors and the seeded, shardable loader."""
