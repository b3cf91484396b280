"""The training room: stages, the loop, callbacks, checkpoints, embeddings, lr-find."""
