"""Sphinx extension: run the chapters' kernels with transport encryption, so ipykernel does not warn.

ipykernel 7 logs "[IPKernelApp] WARNING | Kernel is running over TCP without encryption" at
every kernel start unless the kernel manager gives it CurveZMQ keys. Jupyter Book 1.x executes
notebooks through myst-nb and jupyter-cache, which create their `KernelManager` without any
configuration, so no `_config.yml` option or Jupyter config file reaches it. This extension
sets, in the build process only, the manager's default `transport_encryption` policy to "auto":
keys are provisioned when the kernelspec declares CurveZMQ support (ipykernel's does) and
pyzmq has it, which silences the warning by doing what it asks. With an older jupyter_client
(no such setting) or a pyzmq without CurveZMQ, nothing changes.
"""

from __future__ import annotations


def enable_transport_encryption() -> bool:
    """Make "auto" the default transport_encryption of new kernel managers; False if it cannot be."""
    try:
        import zmq
        from jupyter_client.manager import KernelManager
    except ImportError:
        return False
    trait = KernelManager.class_traits().get("transport_encryption")
    if trait is None or not zmq.has("curve"):
        return False
    trait.default_value = "auto"
    return True


def setup(app):
    enable_transport_encryption()
    return {"parallel_read_safe": True, "parallel_write_safe": True}
