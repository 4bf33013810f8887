"""Fake quantisation, sensitivities and the accuracy proxy, validated against a trained byte-level LM."""

from cimjax.quant.proxy import (
    DEFAULT_ASSUMPTION,
    VARIANTS,
    Proxy,
    default_proxy,
    fit_proxy,
    make_proxy,
    uniform_budgets,
)
from cimjax.quant.quantizers import QuantHooks, QuantScheme, TensorScheme, fake_quant
from cimjax.quant.sensitivity import Sensitivities, estimate

__all__ = [
    "DEFAULT_ASSUMPTION",
    "VARIANTS",
    "Proxy",
    "QuantHooks",
    "QuantScheme",
    "Sensitivities",
    "TensorScheme",
    "default_proxy",
    "estimate",
    "fake_quant",
    "fit_proxy",
    "make_proxy",
    "uniform_budgets",
]
