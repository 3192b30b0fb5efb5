"""The network library: layers with hand-written forward and backward passes, the Sequential
model, losses, optimizers, gradient checks, model files, named architectures and Keras interop.

Read :mod:`scratchcnn.nn.functional` for the math, :mod:`scratchcnn.nn.layers` for how a layer
uses it, and :mod:`scratchcnn.nn.kernels` for how it is made fast.
"""
