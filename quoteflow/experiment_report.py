"""The table `quoteflow simulate` prints: the layout of Avellaneda & Stoikov's section 4."""

from __future__ import annotations

from rich.console import Console
from rich.table import Table

COLUMNS = ("spread_mean", "profit_mean", "profit_std", "final_q_mean", "final_q_std")


def print_experiment(results: dict, gamma: float, console: Console) -> None:
    table = Table(title=f"Avellaneda–Stoikov experiment, γ = {gamma:g}", title_justify="left")
    table.add_column("strategy")
    for column in ("avg spread", "profit", "std(profit)", "final q", "std(final q)"):
        table.add_column(column, justify="right")
    for name in ("inventory", "symmetric"):
        row = results[name]
        table.add_row(name, *(f"{row[column]:.3f}" for column in COLUMNS))
    console.print(table)
