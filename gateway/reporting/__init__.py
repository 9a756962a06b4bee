"""Attribution reporting (pure): the 25 % obligations of L441-1 from attribution data.

- `config`: territories (EPCI and their communes), first-quartile thresholds, QPV dwellings, as data;
- `attributions`: attribution facts from canonical records, figures per year and obligated actor, CSV.
"""
