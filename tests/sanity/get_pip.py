"""Stand-in for the pip bootstrap script ansible-test downloads from a host this network cannot reach.

ansible-test runs it inside each fresh sanity virtualenv with pip-install arguments; pip is
bootstrapped from the interpreter's bundled ensurepip wheel, then upgraded from PyPI to the
version ansible-test asks for.
"""

import ensurepip
import os
import runpy
import sys

saved = dict(os.environ)
ensurepip.bootstrap()
# ensurepip points PIP_CONFIG_FILE at /dev/null for its own run; the site's pip configuration
# (index, CA bundle) must apply to the real install.
os.environ.clear()
os.environ.update(saved)
sys.argv = ["pip", "install", *(a for a in sys.argv[1:] if a not in ("--no-setuptools", "--no-wheel"))]
runpy.run_module("pip", run_name="__main__", alter_sys=True)
