"""Learning-rate policies: Caffe's formulas as pure functions of the settings and the iteration."""
import math

POLICIES = ("fixed", "step", "exp", "inv", "multistep", "poly", "sigmoid")


def current_step(param, it):
    """Caffe's current_step at iteration `it`: steps taken by "step" and "multistep" (else 0).
    Multistep counts the stepvalues reached in order, as Caffe's one-per-iteration scan does."""
    policy = param.lr_policy or "fixed"
    if policy == "step":
        return it // param.stepsize
    if policy == "multistep":
        step = 0
        while step < len(param.stepvalue) and it >= param.stepvalue[step]:
            step += 1
        return step
    return 0


def rate(param, it):
    """The learning rate of iteration `it` (Caffe's GetLearningRate), in float64; a missing
    lr_policy means "fixed"."""
    p, policy = param, param.lr_policy or "fixed"
    if policy == "fixed":
        return p.base_lr
    if policy in ("step", "multistep"):
        return p.base_lr * p.gamma ** current_step(p, it)
    if policy == "exp":
        return p.base_lr * p.gamma ** it
    if policy == "inv":
        return p.base_lr * (1.0 + p.gamma * it) ** -p.power
    if policy == "poly":
        return p.base_lr * (1.0 - it / p.max_iter) ** p.power
    if policy == "sigmoid":
        return p.base_lr / (1.0 + math.exp(-p.gamma * (it - p.stepsize)))
    raise ValueError(f"unknown lr_policy {policy!r}")
