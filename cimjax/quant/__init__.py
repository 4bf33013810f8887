"""Fake quantisation, sensitivities and the accuracy proxy, validated against a trained byte-level LM."""

from cimjax.quant.default_proxy import DEFAULT_ASSUMPTION, default_proxy
from cimjax.quant.proxy import VARIANTS, Proxy, fit_proxy, make_proxy, uniform_budgets
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
