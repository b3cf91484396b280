"""Views of the data for people: the inspection report, its terminal table and picture grids."""
