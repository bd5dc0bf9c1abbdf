"""SMART: the operating system of an aerospace special-processing shop.

The import package holds the four pillars as libraries (``contracts``,
``ledger``, ``access``, ``bus``), the two drivers of the reconcile core
(``operator`` on Kubernetes, ``runtime`` for the embedded floor), the hub
services and the station modules.
"""

__version__ = "0.1.0"
