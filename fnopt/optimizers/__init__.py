"""The named optimizers: first-order aliases (each a :class:`fnopt.Descent`, an optimizer
that is also a transform), built from :mod:`fnopt.transforms` blocks."""

from fnopt.optimizers.first_order import adabelief as adabelief
from fnopt.optimizers.first_order import adadelta as adadelta
from fnopt.optimizers.first_order import adafactor as adafactor
from fnopt.optimizers.first_order import adagrad as adagrad
from fnopt.optimizers.first_order import adam as adam
from fnopt.optimizers.first_order import adamax as adamax
from fnopt.optimizers.first_order import adamw as adamw
from fnopt.optimizers.first_order import asgd as asgd
from fnopt.optimizers.first_order import descent as descent
from fnopt.optimizers.first_order import lamb as lamb
from fnopt.optimizers.first_order import lars as lars
from fnopt.optimizers.first_order import lion as lion
from fnopt.optimizers.first_order import muon as muon
from fnopt.optimizers.first_order import nadam as nadam
from fnopt.optimizers.first_order import radam as radam
from fnopt.optimizers.first_order import rmsprop as rmsprop
from fnopt.optimizers.first_order import rprop as rprop
from fnopt.optimizers.first_order import sgd as sgd

__all__ = [
    "adabelief", "adadelta", "adafactor", "adagrad", "adam", "adamax", "adamw", "asgd",
    "descent", "lamb", "lars", "lion", "muon", "nadam", "radam", "rmsprop", "rprop", "sgd",
]

# the optimizers people moved to after Adam (fnopt/optimizers/recent.py)
from fnopt.optimizers.recent import adan as adan
from fnopt.optimizers.recent import ademamix as ademamix
from fnopt.optimizers.recent import adopt as adopt
from fnopt.optimizers.recent import dadapt_adam as dadapt_adam
from fnopt.optimizers.recent import novograd as novograd
from fnopt.optimizers.recent import prodigy as prodigy
from fnopt.optimizers.recent import sam as sam
from fnopt.optimizers.recent import schedule_free_adamw as schedule_free_adamw
from fnopt.optimizers.recent import schedule_free_eval_params as schedule_free_eval_params
from fnopt.optimizers.recent import schedule_free_sgd as schedule_free_sgd
from fnopt.optimizers.recent import yogi as yogi

__all__ += [
    "adan", "adopt", "ademamix", "dadapt_adam", "novograd", "prodigy",
    "schedule_free_adamw", "schedule_free_sgd", "yogi",
]

# the optax optimizers torch.optim has no counterpart of (fnopt/optimizers/optax_family.py)
from fnopt.optimizers.optax_family import adamaxw as adamaxw  # noqa: E402
from fnopt.optimizers.optax_family import amsgrad as amsgrad  # noqa: E402
from fnopt.optimizers.optax_family import fromage as fromage  # noqa: E402
from fnopt.optimizers.optax_family import nadamw as nadamw  # noqa: E402
from fnopt.optimizers.optax_family import noisy_sgd as noisy_sgd  # noqa: E402
from fnopt.optimizers.optax_family import optimistic_adam as optimistic_adam  # noqa: E402
from fnopt.optimizers.optax_family import optimistic_adam_v2 as optimistic_adam_v2  # noqa: E402
from fnopt.optimizers.optax_family import (  # noqa: E402
    optimistic_gradient_descent as optimistic_gradient_descent,
)
from fnopt.optimizers.optax_family import polyak_sgd as polyak_sgd  # noqa: E402
from fnopt.optimizers.optax_family import sign_sgd as sign_sgd  # noqa: E402
from fnopt.optimizers.optax_family import signum as signum  # noqa: E402
from fnopt.optimizers.optax_family import sm3 as sm3  # noqa: E402

__all__ += [
    "adamaxw", "amsgrad", "fromage", "nadamw", "noisy_sgd", "optimistic_adam", "optimistic_adam_v2",
    "optimistic_gradient_descent", "polyak_sgd", "sign_sgd", "signum", "sm3",
]
