"""Cotation (loi ELAN scoring), adequacy and solvency at designation: pure functions over plain data.

- `grid`: cotation grids as data (YAML + CEL), checked and compiled once;
- `score`: an application under a grid -> fr.gp.Cotation record, position and indicative wait;
- `household`: household size, consumption units, resources per UC (as the SNE);
- `adequacy`: adequacy of household and dwelling, taux d'effort, reste à vivre, rules as data.
"""
