"""Importing layerforge changes nothing outside it: BLAS threads, environment, LLVM symbols,
fork hooks and Numba's thread count are as they were, even with every module loaded."""
import os
import subprocess
import sys

PROBE = """
import os
import numpy, numba
from llvmlite import binding
from threadpoolctl import threadpool_info
def blas():
    return [(i["filepath"], i["num_threads"]) for i in threadpool_info() if i["user_api"] == "blas"]
before = (blas(), dict(os.environ), numba.get_num_threads())
calls = []
os.register_at_fork = lambda **hooks: calls.append(hooks)
import layerforge, layerforge.cli, layerforge.testing
from layerforge import registry
registry.registered_types()          # every built-in layer module
import layerforge.kernels.blas, layerforge.solvers
after = (blas(), dict(os.environ), numba.get_num_threads())
print(before == after, binding.address_of_symbol("layerforge_sgemm") is None, calls == [])
"""


def test_import_has_no_global_effects():
    env = {k: v for k, v in os.environ.items() if k != "OPENBLAS_NUM_THREADS"}
    result = subprocess.run([sys.executable, "-c", PROBE], env=env, capture_output=True, text=True,
                            cwd=os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.split() == ["True", "True", "True"]
