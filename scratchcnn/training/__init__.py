"""Training on MNIST: the resumable training loop, batched augmentation, reports, and the
``python -m scratchcnn.train`` and ``python -m scratchcnn.evaluate`` commands."""
