"""``python -m imgclf`` runs the command line."""

from imgclf.cli import main

main()
