"""Providers: gradients (:mod:`~fnopt.grad.gradients`, with the gradient checker),
Hessians and Hessian-vector products (:mod:`~fnopt.grad.hessians`), residuals and
Jacobians for least squares (:mod:`~fnopt.grad.residuals`).
"""

from __future__ import annotations

from fnopt.grad import gradients as _gradients
from fnopt.grad import hessians as _hessians
from fnopt.grad import residuals as residuals
from fnopt.grad.gradients import GradCheckReport as GradCheckReport
from fnopt.grad.gradients import check as check
from fnopt.grad.gradients import finite_differences as finite_differences
from fnopt.grad.gradients import from_functions as from_functions
from fnopt.grad.gradients import module as module
from fnopt.grad.gradients import torch_autograd as torch_autograd
from fnopt.grad.gradients import torch_func as torch_func
from fnopt.grad.gradients import validated as validated
from fnopt.grad.hessians import hessian_from_function as hessian_from_function
from fnopt.grad.hessians import hvp_finite_differences as hvp_finite_differences
from fnopt.grad.hessians import hvp_from_hessian as hvp_from_hessian
from fnopt.grad.hessians import hvp_torch as hvp_torch
from fnopt.grad.hessians import torch_hessian as torch_hessian
from fnopt.grad.residuals import JacobianCheckReport as JacobianCheckReport
from fnopt.grad.residuals import Linearization as Linearization
from fnopt.grad.residuals import ResidualFn as ResidualFn
from fnopt.grad.residuals import check_jacobian as check_jacobian
from fnopt.grad.residuals import ravel_residuals as ravel_residuals
from fnopt.grad.residuals import residuals_finite_differences as residuals_finite_differences
from fnopt.grad.residuals import residuals_from_functions as residuals_from_functions
from fnopt.grad.residuals import residuals_matrix_free as residuals_matrix_free
from fnopt.grad.residuals import residuals_torch as residuals_torch

__all__ = [
    *_gradients.__all__,
    *_hessians.__all__,
    "Linearization",
    "check_jacobian",
    "residuals_finite_differences",
    "residuals_from_functions",
    "residuals_matrix_free",
    "residuals_torch",
]
