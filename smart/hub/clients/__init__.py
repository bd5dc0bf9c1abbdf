"""ClientManager (Vault hub): clients, customer POs and lines with their flowdowns, and contract review.

The shop's record of what each client ordered and required: retention rule,
Nadcap requirement and quality clauses per client; part, revision,
quantity, serials or lot, price and due date per PO line; spec and revision,
class, acceptance criteria, Nadcap and retention per flowdown; and who
reviewed the contract, when, and with what outcome (AS9100D 8.2.3). Its
tables live in the ``clients`` schema (:func:`store.migrate`); every change
is an entry on the ``client-manager`` ledger node.
"""
