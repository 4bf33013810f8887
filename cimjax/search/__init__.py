"""Design-space search: the exhaustive sweep, the paper's GA and gradient search (:mod:`cimjax.search.runner`).

``cimjax.search`` names both this package and the function :func:`cimjax.search.runner.search` that the top
level exports. Python binds the package to that name as soon as any module below is imported (which
``cimjax.optimize_report`` does), so the package is callable and forwards to the function: a notebook's
``cimjax.search(model, precision, alpha)`` works in whatever order things were imported.
"""

import sys
import types


class _CallablePackage(types.ModuleType):
    def __call__(self, *args, **kwargs):
        from cimjax.search.runner import search

        return search(*args, **kwargs)


sys.modules[__name__].__class__ = _CallablePackage
