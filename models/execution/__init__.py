"""Pure pieces of the order executor: client order ids, order states, planning, reconciliation."""
