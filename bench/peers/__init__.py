"""The peers: the same GET written the ways most people would, for the ratios."""
