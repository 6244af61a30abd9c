"""The demo: the whole loop (curate → review → train → evaluate → gate) on a real model, unattended.

    from assay.demo import run_demo
    result = run_demo("./.assay")        # what `assay demo` and `make demo` run
"""

from typing import Any


def run_demo(*args: Any, **kwargs: Any) -> dict[str, Any]:
    from assay.demo.run import run_demo as run

    return run(*args, **kwargs)


__all__ = ["run_demo"]
