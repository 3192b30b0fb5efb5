"""Stochastic gradient descent with momentum, Nesterov and weight decay, and learning-rate schedules."""

from __future__ import annotations

import math

import numpy as np

from scratchcnn.nn.layers import Parameter


class SGD:
    """SGD on a list of :class:`Parameter`, with Keras's update rule (so runs compare exactly)::

        g = grad + weight_decay * w                   # L2 penalty, coupled to the gradient
        v = momentum * v - lr * g
        w = w + v                                     # plain momentum
        w = w + momentum * v - lr * g                 # nesterov=True

    ``lr`` may be changed between steps (a schedule sets it). ``state_dict`` / ``load_state_dict``
    save and restore the velocities for resumable training.
    """

    def __init__(
        self,
        params,
        lr: float = 0.01,
        momentum: float = 0.0,
        nesterov: bool = False,
        weight_decay: float = 0.0,
    ):
        self.params: list[Parameter] = list(params)
        if not lr > 0:
            raise ValueError(f"learning rate must be > 0, got {lr!r}")
        if not 0.0 <= momentum < 1.0:
            raise ValueError(f"momentum must be in [0, 1), got {momentum!r}")
        if weight_decay < 0:
            raise ValueError(f"weight_decay must be >= 0, got {weight_decay!r}")
        if nesterov and momentum == 0:
            raise ValueError("nesterov=True needs a momentum > 0")
        self.lr = float(lr)
        self.momentum = float(momentum)
        self.nesterov = bool(nesterov)
        self.weight_decay = float(weight_decay)
        self.velocities = [np.zeros_like(p.data) for p in self.params] if momentum else []

    def step(self) -> None:
        """Update every parameter in place from its ``grad``."""
        lr, momentum = self.lr, self.momentum
        for i, p in enumerate(self.params):
            g = p.grad
            if self.weight_decay:
                g = g + self.weight_decay * p.data
            if not momentum:
                p.data -= lr * g
                continue
            v = self.velocities[i]
            v *= momentum
            v -= lr * g
            if self.nesterov:
                p.data += momentum * v - lr * g
            else:
                p.data += v

    def state_dict(self) -> dict:
        """Hyper-parameters and velocities (a list of arrays), enough to resume exactly."""
        return {
            "lr": self.lr,
            "momentum": self.momentum,
            "nesterov": self.nesterov,
            "weight_decay": self.weight_decay,
            "velocities": [v.copy() for v in self.velocities],
        }

    def load_state_dict(self, state: dict) -> None:
        velocities = list(state["velocities"])
        if len(velocities) != len(self.velocities) or any(
            v.shape != p.shape for v, p in zip(velocities, self.velocities, strict=True)
        ):
            raise ValueError("optimizer state does not match this model's parameters")
        self.lr = float(state["lr"])
        self.velocities = [
            np.array(v, dtype=p.dtype) for v, p in zip(velocities, self.velocities, strict=True)
        ]


class ConstantSchedule:
    """The same learning rate at every step."""

    def __init__(self, base_lr: float):
        self.base_lr = float(base_lr)

    def __call__(self, step: int) -> float:
        return self.base_lr


class StepSchedule:
    """``base_lr * gamma ** (step // step_size)``: divide the rate every ``step_size`` steps."""

    def __init__(self, base_lr: float, step_size: int, gamma: float = 0.1):
        if step_size < 1:
            raise ValueError(f"step_size must be >= 1, got {step_size!r}")
        self.base_lr, self.step_size, self.gamma = float(base_lr), int(step_size), float(gamma)

    def __call__(self, step: int) -> float:
        return self.base_lr * self.gamma ** (step // self.step_size)


class CosineSchedule:
    """Linear warm-up for ``warmup_steps``, then a cosine decay from ``base_lr`` to ``min_lr`` at
    ``total_steps`` (held there afterwards)."""

    def __init__(
        self, base_lr: float, total_steps: int, warmup_steps: int = 0, min_lr: float = 0.0
    ):
        if total_steps < 1 or not 0 <= warmup_steps < total_steps:
            raise ValueError(
                f"need total_steps >= 1 and 0 <= warmup_steps < total_steps, "
                f"got {total_steps!r} and {warmup_steps!r}"
            )
        self.base_lr, self.min_lr = float(base_lr), float(min_lr)
        self.total_steps, self.warmup_steps = int(total_steps), int(warmup_steps)

    def __call__(self, step: int) -> float:
        if step < self.warmup_steps:
            return self.base_lr * (step + 1) / self.warmup_steps
        progress = min(1.0, (step - self.warmup_steps) / (self.total_steps - self.warmup_steps))
        return self.min_lr + 0.5 * (self.base_lr - self.min_lr) * (
            1.0 + math.cos(math.pi * progress)
        )
