"""The rule families: one file per kind of rule, holding its model, its compiler and its registration.

A fix to how a kind of rule judges lands in that kind's file. The words all
families share are in :mod:`vocabulary`, what a compiled rule is made of in
:mod:`judging`; :mod:`smart.contracts.rules` lists the families a contract
may use and :mod:`smart.contracts.engine` runs them.
"""
