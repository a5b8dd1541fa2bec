"""Write docs/migration/optax-table.md: every public optax name (``optax.__all__``) with
its fnopt counterpart, the difference, or "not supported" and why.

Run ``python scripts/optax_migration_table.py`` (optax installed: the ``refs`` extra)
to regenerate the table; tests/test_optax_migration_table.py checks that the file is
what this script writes, that every optax name has a row and that every fnopt name in
it exists.
"""

from __future__ import annotations

import pathlib
import sys

OUT = pathlib.Path(__file__).resolve().parent.parent / "docs" / "migration" / "optax-table.md"

JAX_ONLY = "not supported: JAX-specific (jit/pytree/RNG-key machinery fnopt has no use for)"
LOSS = "not supported: a loss function, not an optimizer (write it in NumPy/torch)"
TYPE = "not needed: a type annotation; fnopt's are in fnopt._base (Params, Updates, State)"
STATE = "the state class of the transform of the same name; fnopt's states are NamedTuples"

# optax name -> (fnopt name or "" when none, note). Names fnopt has under the same name
# and with the same meaning need no row here (see ``row``).
ROWS: dict[str, tuple[str, str]] = {
    # optimizers whose defaults or arithmetic differ from optax's
    "adam": ("adam", "torch.optim.Adam's arithmetic; the same numbers as optax for the "
             "same arguments; eps_root=, nesterov=, mask= as optax"),
    "adamw": ("adamw", "default weight_decay 1e-2 (torch) where optax has 1e-4; mask= as optax"),
    "nadam": ("nadam", "torch.optim.NAdam (momentum_decay schedule), not optax's nadam; "
              "optax's is fnopt.adam(nesterov=True)"),
    "nadamw": ("nadamw", "optax's arithmetic (default weight_decay 1e-4)"),
    "amsgrad": ("amsgrad", "optax's arithmetic (maximum of the bias-corrected second moment); "
                "torch's Adam(amsgrad=True) is fnopt.adam(amsgrad=True)"),
    "lion": ("lion", "default weight_decay 0 where optax has 1e-3; mu_dtype=, mask= as optax"),
    "rmsprop": ("rmsprop", "torch.optim.RMSprop by default (decay 0.99, eps outside the "
                "root); optax's is rmsprop(decay=0.9, eps_in_sqrt=True); initial_scale=, "
                "bias_correction= as optax"),
    "adagrad": ("adagrad", "torch.optim.Adagrad (initial_accumulator_value 0, eps 1e-10 "
                "outside the root); optax: 0.1 and 1e-7"),
    "adafactor": ("adafactor", "torch.optim.Adafactor's algorithm and arguments "
                  "(beta2_decay, eps pair, d); optax's options differ"),
    "radam": ("radam", "torch.optim.RAdam"),
    "adamax": ("adamax", "the same arithmetic (torch.optim.Adamax)"),
    "sgd": ("sgd", "torch.optim.SGD's momentum (buffer starts at the gradient, dampening); "
            "optax's trace starts at zero: the first momentum step differs"),
    "lookahead": ("lookahead", "the params are the fast weights and the slow ones live in the "
                  "state (no LookaheadParams); slow_step_size=, reset_state= as optax"),
    "noisy_sgd": ("noisy_sgd", "the noise is NumPy's (seed=), not JAX's draws (key=)"),
    "optimistic_adam": ("optimistic_adam", "optax's arithmetic; also takes a schedule "
                        "(with optimism=None)"),
    "polyak_sgd": ("polyak_sgd", "options after max_learning_rate are keyword-only"),
    "fromage": ("fromage", "optax's arithmetic where the params are non-zero; a leaf whose "
                "params norm is <= min_norm is not rescaled (optax floors it at min_norm)"),
    "MultiSteps": ("MultiSteps", "accumulator_dtype defaults to the params' dtype (optax: "
                   "float32); a MultiSteps is an optimizer usable in fixed_point"),
    "reduce_on_plateau": ("reduce_on_plateau", "torch's ReduceLROnPlateau rule: the reduced "
                          "scale applies from the next step"),
    "add_noise": ("add_noise", "NumPy draws from seed=, not JAX's key"),
    "clip_by_global_norm": ("clip_by_global_norm", "optax's exact rule; eps=1e-6 gives "
                            "torch's clip_grad_norm_"),
    "scale_by_adam": ("scale_by_adam", "torch's arithmetic, the same numbers; eps_root=, "
                      "nesterov= use optax's"),
    "scale_by_rms": ("scale_by_rms", "torch's RMSprop by default (eps outside the root); "
                     "eps_in_sqrt=True, initial_scale=, bias_correction= as optax"),
    "scale_by_stddev": ("scale_by_stddev", "torch's centered RMSprop"),
    "scale_by_adagrad": ("scale_by_adagrad", "torch's Adagrad (eps outside the root)"),
    "scale_by_schedule": ("scale_by_schedule", ""),
    "inject_hyperparams": ("inject_hyperparams", "static_args=, hyperparam_dtype= as optax; "
                           "hyperparameters are kept as given (Python floats) unless "
                           "hyperparam_dtype, where optax casts them to the params' dtype; "
                           "no stateful schedules (optax.schedules.StatefulSchedule)"),
    "adaptive_grad_clip": ("adaptive_grad_clip", "axis= as optax"),
    "trace": ("trace", "torch's momentum (buffer starts at the gradient, dampening=); "
              "optax's starts at zero"),
    "masked": ("masked", "a masked optimizer freezes the leaves outside the mask; a masked "
               "transform passes them through (optax); the wrapped transform sees the "
               "selected leaves as a list (no MaskedNode), so a masked nested inside "
               "another takes a mask function, not a pytree of the full params"),
    # names fnopt spells differently
    "multi_transform": ("partition", "optax's older name for partition"),
    "global_norm": ("tree.global_norm", ""),
    "tree": ("tree", "fnopt.tree: the pytree arithmetic; map_params(params, f, state) takes "
             "the params where optax takes the optimizer"),
    "safe_norm": ("", "not supported: fnopt's norms need no gradient-safe variant "
                  "(no autodiff through the update)"),
    "scale_by_rss": ("scale_by_adagrad", "torch's Adagrad denominator sqrt(s) + eps; "
                     "optax's is 1/sqrt(s + eps) with initial value 0.1"),
    "scale_by_trust_ratio": ("scale_by_trust_ratio", "min_norm: leaves at or below it are "
                             "left unscaled (optax floors the norms)"),
    "apply_every": ("accumulate", "accumulate(k, transform) sums/averages k gradients and "
                    "applies once (optax's apply_every is deprecated for MultiSteps)"),
    "ApplyEvery": ("transforms.AccumulateState", STATE),
    "flatten": ("", "not needed: fnopt's transforms work on every leaf directly"),
    "stateless": ("", "not supported: write Transform(init, update) with an empty state"),
    "stateless_with_tree_map": ("", "not supported: write Transform(init, update) with "
                                "fnopt.tree.map"),
    "scale_gradient": ("", JAX_ONLY + " (a custom-VJP trick)"),
    "skip_large_updates": ("", "not supported: pass your own should_skip_update_fn to "
                           "MultiSteps (skip_not_finite is provided)"),
    "measure_with_ema": ("", "not supported (monitoring wrapper)"),
    "monitor": ("", "not supported (monitoring wrapper)"),
    "MonitorState": ("", "not supported (monitoring wrapper)"),
    "conditionally_mask": ("", "not supported: use apply_if_finite or masked"),
    "conditionally_transform": ("", "not supported: use apply_if_finite or masked"),
    "ConditionallyMaskState": ("", "not supported"),
    "ConditionallyTransformState": ("", "not supported"),
    "differentially_private_aggregate": ("", "not supported: needs per-example gradients, "
                                         "which fnopt's grad_fn does not return"),
    "DifferentiallyPrivateAggregateState": ("", "not supported (see "
                                            "differentially_private_aggregate)"),
    "dpsgd": ("", "not supported (see differentially_private_aggregate)"),
    "per_example_global_norm_clip": ("", "not supported: per-example gradients"),
    "per_example_layer_norm_clip": ("", "not supported: per-example gradients"),
    "microbatch": ("", JAX_ONLY + "; use MultiSteps or accumulate"),
    "scale_by_backtracking_linesearch": ("backtracking", "a line search is an optimizer in "
                                         "fnopt (fnopt.backtracking, line_search), not a "
                                         "transform"),
    "scale_by_zoom_linesearch": ("strong_wolfe", "fnopt.strong_wolfe / line_search"),
    "ScaleByBacktrackingLinesearchState": ("", "see scale_by_backtracking_linesearch"),
    "ScaleByZoomLinesearchState": ("", "see scale_by_zoom_linesearch"),
    "ZoomLinesearchInfo": ("LineSearchResult", ""),
    "scale_by_lbfgs": ("lbfgs", "an optimizer (fnopt.lbfgs), not a transform"),
    "ScaleByLBFGSState": ("", "see scale_by_lbfgs"),
    "value_and_grad_from_state": ("", "not needed: fnopt's optimizer states record the loss "
                                  "and gradient norm of the last step"),
    "scale_by_param_block_norm": ("", "not supported; scale_by_param_block_rms is"),
    "matrix_inverse_pth_root": ("", "not supported (Shampoo building block)"),
    "power_iteration": ("", "not supported (linear-algebra helper)"),
    "multi_normal": ("", JAX_ONLY),
    "nnls": ("", "not supported: use scipy.optimize.nnls or fnopt.least_squares with bounds"),
    "safe_increment": ("", JAX_ONLY + " (int32 overflow of the step count)"),
    "safe_int32_increment": ("", JAX_ONLY + " (int32 overflow of the step count)"),
    "safe_root_mean_squares": ("", "not needed (no autodiff through the update)"),
    "init_empty_state": ("transforms.EmptyState", "EmptyState() is fnopt's empty state"),
    "assignment": ("", "not supported (the Hungarian algorithm, not an optimizer)"),
    "GradientTransformation": ("Transform", "fnopt.Transform(init, update)"),
    "GradientTransformationExtraArgs": ("Transform", "combinators take extra keyword "
                                        "arguments in update and hand them to the "
                                        "transforms inside that take them"),
    "TransformInitFn": ("", TYPE),
    "TransformUpdateFn": ("", TYPE),
    "TransformUpdateExtraArgsFn": ("", TYPE),
    "OptState": ("", TYPE),
    "Params": ("", TYPE),
    "Updates": ("", TYPE),
    "ScalarOrSchedule": ("", TYPE),
    "MaskOrFn": ("", TYPE),
    "ShouldSkipUpdateFunction": ("", TYPE),
    "LookaheadParams": ("", "not needed: fnopt's lookahead keeps the slow weights in its "
                        "state"),
    "MultiTransformState": ("transforms.PartitionState", STATE),
    "AdaptiveGradClipState": ("transforms.EmptyState", STATE),
    "AddDecayedWeightsState": ("transforms.EmptyState", STATE),
    "ClipByGlobalNormState": ("transforms.EmptyState", STATE),
    "ClipState": ("transforms.EmptyState", STATE),
    "NonNegativeParamsState": ("transforms.EmptyState", STATE),
    "ScaleState": ("transforms.EmptyState", STATE),
    "ScaleByTrustRatioState": ("transforms.EmptyState", STATE),
    "ScaleByAdaDeltaState": ("transforms.ScaleByAdadeltaState", STATE),
    "ScaleByAdanState": ("", STATE + " (fnopt.scale_by_adan's state)"),
    "ScaleByNovogradState": ("", STATE + " (fnopt.scale_by_novograd's state)"),
    "ScaleByRssState": ("transforms.ScaleByAdagradState", STATE),
    "ScaleByRStdDevState": ("transforms.ScaleByStddevState", STATE),
    "FactoredState": ("transforms.ScaleByFactoredRmsState", STATE),
    "ctc_loss": ("", LOSS), "ctc_loss_with_forward_probs": ("", LOSS),
    "convex_kl_divergence": ("", LOSS), "cosine_distance": ("", LOSS),
    "cosine_similarity": ("", LOSS), "generalized_kl_divergence": ("", LOSS),
    "hinge_loss": ("", LOSS), "huber_loss": ("", LOSS), "kl_divergence": ("", LOSS),
    "l2_loss": ("", LOSS), "log_cosh": ("", LOSS), "ntxent": ("", LOSS),
    "sigmoid_binary_cross_entropy": ("", LOSS), "smooth_labels": ("", LOSS),
    "softmax_cross_entropy": ("", LOSS),
    "softmax_cross_entropy_with_integer_labels": ("", LOSS),
}


def resolve(name: str) -> object:
    """The fnopt object a table entry names (``adam``, ``tree.global_norm``,
    ``transforms.EmptyState``, ...)."""
    import fnopt

    obj: object = fnopt
    for part in name.split("."):
        obj = getattr(obj, part)
    return obj


def row(name: str) -> tuple[str, str]:
    """``(fnopt name, note)`` for one optax name; a name fnopt has with the same
    meaning (top level, fnopt.transforms or fnopt.schedules) needs no entry in ROWS."""
    if name in ROWS:
        return ROWS[name]
    for where in ("", "transforms.", "schedules."):
        try:
            resolve(where + name)
        except AttributeError:
            continue
        return where + name, ""
    return "", "not supported (no entry yet)"


def table(names: list[str]) -> str:
    lines = [
        "### optax → fnopt",
        "",
        "Every public name of optax (`optax.__all__`, optax 0.2.8) and its fnopt",
        "counterpart. Generated by `scripts/optax_migration_table.py`;",
        "`tests/test_optax_migration_table.py` keeps it complete.",
        "",
        "Where torch.optim has the optimizer, fnopt's alias follows torch.optim's",
        "arithmetic and defaults (the rows say where this differs from optax's); the",
        "optax-only optimizers follow optax's arithmetic, step by step",
        "(`tests/test_optax_parity.py`). Names are the same unless the row says otherwise.",
        "",
        "| optax | fnopt | difference / reason |",
        "| --- | --- | --- |",
    ]
    for name in sorted(set(names), key=str.lower):
        target, note = row(name)
        fn = f"`fnopt.{target}`" if target else "—"
        lines.append(f"| `optax.{name}` | {fn} | {note or 'same name'} |")
    return "\n".join(lines) + "\n"


def main() -> int:
    import optax

    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(table(list(optax.__all__)), encoding="utf-8")
    print(f"wrote {OUT} ({len(set(optax.__all__))} names)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
