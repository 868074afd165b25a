"""`make bench`: the service measured beside the floor of its stack and two usual peers."""
